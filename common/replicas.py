"""Replicas of another service's aggregates that never move backwards (G5).

Each replica row stores the aggregate version it reflects. An event is applied only if it is newer;
a deletion leaves a tombstone (the row, marked deleted, personal data cleared) so that a late update
cannot bring the aggregate back. Events carry the whole state, so the newest one alone is enough.

Where every version has an effect of its own (a mail per order event), `in_sequence` applies them in
order instead: a version that comes before the one it follows is retried later.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction
from django.utils import timezone

M = TypeVar("M", bound=models.Model)


# An aggregate's versions count its changes one by one: a version this far ahead of the replica's
# is no change that happened but a forged or broken event, and would freeze the replica for good
# (every real version after it would look stale). It is refused, so the event is parked.
MAX_VERSION_STEP = 1000


class VersionTooFarAhead(ValueError):
    """The event's aggregate version is implausibly far ahead of the replica's."""


class Replica(models.Model):
    """What every replica stores beside its key (the aggregate's id) and the state it copies: the
    version `apply_version` last applied, when the tombstone was set, and its own timestamps.
    Abstract: each service keeps its own table."""

    version = models.PositiveIntegerField()
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ("-created_at",)


R = TypeVar("R", bound=Replica)


def apply_version(
    model: type[R], *, key: dict[str, Any], version: int, values: dict[str, Any], delete: bool = False
) -> R | None:
    """Apply the aggregate's state at `version`; the row when it changed, None when it was stale.

    The row is locked while deciding, so two events of one aggregate handled at once serialise.
    """
    with transaction.atomic():
        row = model.objects.select_for_update().filter(**key).first()  # type: ignore[attr-defined]
        _plausible(model, key, version, row.version if row is not None else 0)
        if row is None:
            try:
                with transaction.atomic():
                    return model.objects.create(  # type: ignore[attr-defined, no-any-return]
                        **key, **values, version=version, deleted_at=timezone.now() if delete else None
                    )
            except IntegrityError:  # created by a concurrent event since we looked
                row = model.objects.select_for_update().get(**key)  # type: ignore[attr-defined]
        if row.deleted_at is not None or row.version >= version:
            return None
        for field, value in values.items():
            setattr(row, field, value)
        row.version = version
        if delete:
            row.deleted_at = timezone.now()
        row.save()
        return row  # type: ignore[no-any-return]


def _plausible(model: type[Any], key: dict[str, Any], version: int, current: int) -> None:
    if version - current > MAX_VERSION_STEP:
        raise VersionTooFarAhead(
            f"{model.__name__} {key}: version {version} is more than {MAX_VERSION_STEP} ahead of "
            f"version {current}: refused (a forged or broken event would freeze the replica)"
        )


class EarlierVersionMissing(LookupError):
    """An aggregate's event arrived before one it follows (the bus reorders): try again later."""


def in_sequence(model: type[M], *, key: dict[str, Any], version: int) -> bool:
    """Record that the aggregate's `version` is applied, if it is the next one; False when it was
    applied already (a duplicate or a replay), `EarlierVersionMissing` when one before it is still
    to come. Call inside the handler's transaction, before the effect: the row is locked meanwhile.
    The first version of an aggregate is 1."""
    with transaction.atomic():
        row = model.objects.select_for_update().filter(**key).first()  # type: ignore[attr-defined]
        applied = row.version if row is not None else 0
        if version <= applied:
            return False
        if version != applied + 1:
            raise EarlierVersionMissing(f"{key} v{version} came before v{applied + 1}")
        if row is None:
            model.objects.create(**key, version=version)  # type: ignore[attr-defined]
        else:
            row.version = version
            row.save(update_fields=["version"])
        return True
