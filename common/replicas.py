"""Replicas of another service's aggregates that never move backwards (G5).

Each replica row stores the aggregate version it reflects. An event is applied only if it is newer;
a deletion leaves a tombstone (the row, marked deleted, personal data cleared) so that a late update
cannot bring the aggregate back. Events carry the whole state, so the newest one alone is enough.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction
from django.utils import timezone

M = TypeVar("M", bound=models.Model)


def apply_version(
    model: type[M], *, key: dict[str, Any], version: int, values: dict[str, Any], delete: bool = False
) -> M | None:
    """Apply the aggregate's state at `version`; the row when it changed, None when it was stale.

    The row is locked while deciding, so two events of one aggregate handled at once serialise.
    """
    with transaction.atomic():
        row = model.objects.select_for_update().filter(**key).first()  # type: ignore[attr-defined]
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
