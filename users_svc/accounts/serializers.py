from __future__ import annotations

from rest_framework import serializers

from common.fields import StrictCharField, StrictEmailField
from users_svc.accounts.models import User


class SignUpInput(serializers.Serializer[None]):
    email = StrictEmailField(max_length=254)
    password = StrictCharField(write_only=True, max_length=128, trim_whitespace=False)
    first_name = StrictCharField(max_length=150, allow_blank=True, default="")
    last_name = StrictCharField(max_length=150, allow_blank=True, default="")


class UpdateMeInput(serializers.Serializer[None]):
    email = StrictEmailField(max_length=254, required=False)
    first_name = StrictCharField(max_length=150, allow_blank=True, required=False)
    last_name = StrictCharField(max_length=150, allow_blank=True, required=False)


class ChangePasswordInput(serializers.Serializer[None]):
    current_password = StrictCharField(max_length=128, trim_whitespace=False)
    new_password = StrictCharField(max_length=128, trim_whitespace=False)


class UserOutput(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ("id", "email", "first_name", "last_name", "date_joined")
        read_only_fields = fields
