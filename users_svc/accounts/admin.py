"""Users in the admin. Profile changes and deletions go through the services, so the other services
hear about them (user.updated, user.deleted) exactly as if the user had made them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from users_svc.accounts import services
from users_svc.accounts.models import User

PROFILE_FIELDS = ("email", "first_name", "last_name")


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    ordering = ("-date_joined",)
    list_display = ("email", "first_name", "last_name", "is_active", "is_staff", "date_joined")
    list_filter = ("is_active", "is_staff", "is_superuser", "date_joined")
    search_fields = ("email", "first_name", "last_name", "=id")
    readonly_fields = ("id", "version", "date_joined", "last_login")
    fieldsets = (
        (None, {"fields": ("id", "email", "password", "version")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("date_joined", "last_login")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people sign up through the API; operators with `createsuperuser`

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        profile = {f: form.cleaned_data[f] for f in PROFILE_FIELDS if f in form.changed_data}
        if profile:
            original = User.objects.get(pk=obj.pk)
            for field in profile:
                setattr(obj, field, getattr(original, field))
        super().save_model(request, obj, form, change)
        if profile:
            services.update_profile(user_id=obj.pk, **profile)
            obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        services.delete_account(user_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user_id in queryset.values_list("pk", flat=True):
            services.delete_account(user_id=user_id)
