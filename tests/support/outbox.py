"""What a service published, read from its outbox (Django test groups)."""

from __future__ import annotations

import json
from typing import Any

from common.bus.models import OutboxMessage


def published(event_type: str | None = None) -> list[dict[str, Any]]:
    """Envelopes in the outbox, oldest first, optionally of one type."""
    rows = OutboxMessage.objects.order_by("id")
    if event_type:
        rows = rows.filter(event_type=event_type)
    return [json.loads(envelope) for envelope in rows.values_list("envelope", flat=True)]
