from __future__ import annotations

import uuid

from django.db import models

from common.replicas import Replica


class Customer(Replica):
    """Replica of a user, built from user events only; `version` is the last user version applied.
    A deleted user stays as a tombstone (`deleted_at`, email cleared) so late events cannot revive it."""

    id = models.UUIDField(primary_key=True, help_text="The user's id in the users service.")
    email = models.EmailField(blank=True)

    def __str__(self) -> str:
        return self.email


class Order(models.Model):
    class Status(models.TextChoices):
        PLACED = "placed"
        CANCELLED = "cancelled"

    class CancelReason(models.TextChoices):
        CUSTOMER = "customer"
        ACCOUNT_DELETED = "account_deleted"
        OPERATOR = "operator"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLACED)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    version = models.PositiveIntegerField(default=1)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=20, choices=CancelReason.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [models.Index(fields=["customer", "-created_at"], name="order_customer_recent")]

    def __str__(self) -> str:
        return f"order {self.id}"

    @property
    def cancellable(self) -> bool:
        return self.status == self.Status.PLACED


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    sku = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ("order", "position")
        constraints = [
            models.UniqueConstraint(fields=["order", "position"], name="orderline_position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"
