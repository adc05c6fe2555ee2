"""From received events to their outcomes, for every route (a Celery task, a batch).

Validation comes before any write: a message that cannot be understood changes nothing and is parked
at once, never retried (it would fail the same way every time).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from pydantic import ValidationError

from common.bus import metrics
from common.bus.consume import inbox
from common.bus.consume.failures import Park, RetryLater, is_transient, qualified_name, retry_delay
from common.bus.consume.handlers import HandlerRegistry, Subscription
from common.contracts.base import Contract, UnknownEventType, UnknownEventVersion, upcast
from common.contracts.envelope import Envelope
from common.observability.context import in_flight

log = logging.getLogger(__name__)


class InvalidMessage(ValueError):
    """The message can never be handled as it is: bad envelope, contract, type or version."""


Parsed = tuple[Envelope, Subscription, Contract]
# "handled", "duplicate", or what to do instead: RetryLater, Park, or the handler's own error (parked)
Outcome = str | Exception


@dataclass(frozen=True)
class Delivery:
    task_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    attempt: int = 1  # 1 for the first delivery, +1 for each retry


def outcomes(registry: HandlerRegistry, deliveries: Sequence[Delivery]) -> list[Outcome]:
    """What becomes of each delivery. Several valid ones are handled in one transaction; if it
    fails, it is rolled back and each is handled alone, with its own retries and dead letter."""
    results: dict[int, Outcome] = {}
    parsed: list[tuple[int, Parsed]] = []
    for index, delivery in enumerate(deliveries):
        try:
            parsed.append(
                (index, parse(registry, delivery.args, delivery.kwargs, task_name=delivery.task_name))
            )
        except InvalidMessage as exc:
            results[index] = Park("invalid", str(exc), "InvalidMessage")
    if len(parsed) > 1:
        try:
            handled = handle_batch([item for _, item in parsed], service=registry.service)
        except Exception as exc:  # noqa: BLE001 - rolled back: each event gets its own transaction and fate
            log.info("a batch of %d rolled back (%s); handling its events one by one", len(parsed), exc)
        else:
            results.update((index, _status(new)) for (index, _), new in zip(parsed, handled, strict=True))
            parsed = []
    for index, item in parsed:
        results[index] = _alone(item, deliveries[index].attempt, registry.service)
    return [results[index] for index in range(len(deliveries))]


def _alone(item: Parsed, attempt: int, service: str) -> Outcome:
    try:
        return _status(handle_batch([item], service=service)[0])
    except Exception as exc:  # noqa: BLE001 - the outcome says what to do with it
        if not is_transient(exc, item[1].transient):
            return exc
        cause = f"{type(exc).__name__}: {exc}"
        if attempt >= settings.BUS_RETRY_MAX_ATTEMPTS:
            exhausted = Park(
                "retries-exhausted", f"gave up after {attempt} attempts: {cause}", qualified_name(exc)
            )
            exhausted.__cause__ = exc
            return exhausted
        base, maximum = settings.BUS_RETRY_BASE_SECONDS, settings.BUS_RETRY_MAX_DELAY_SECONDS
        return RetryLater(retry_delay(attempt, base=base, maximum=maximum), attempt, cause)


def _status(new: bool) -> str:
    return "handled" if new else "duplicate"


def parse(
    registry: HandlerRegistry, args: tuple[Any, ...], kwargs: dict[str, Any], *, task_name: str
) -> Parsed:
    if len(args) != 1 or kwargs:
        raise InvalidMessage("the message body must carry exactly one envelope argument")
    try:
        envelope = Envelope.model_validate(args[0])
    except ValidationError as exc:
        raise InvalidMessage(f"invalid envelope: {_summary(exc)}") from None
    if envelope.type != task_name:
        raise InvalidMessage(f"envelope type {envelope.type!r} does not match task {task_name!r}")
    try:
        subscription = registry.subscription(envelope.type)
        data = upcast(
            envelope.type,
            envelope.data,
            from_version=envelope.version,
            to_version=subscription.contract.version,
        )
    except (UnknownEventType, UnknownEventVersion) as exc:
        raise InvalidMessage(
            f"{registry.service} cannot handle {envelope.type} v{envelope.version}: {exc}"
        ) from None
    if envelope.producer != subscription.contract.producer:
        raise InvalidMessage(
            f"{envelope.type} is produced by {subscription.contract.producer}, "
            f"not {envelope.producer!r} as its envelope says"
        )
    try:
        event = subscription.contract.model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(
            f"{envelope.type} v{envelope.version} data does not match its contract: {_summary(exc)}"
        ) from None
    return envelope, subscription, event


def handle_batch(items: Sequence[Parsed], *, service: str) -> list[bool]:
    """Run each handler once per event id, all in one transaction with their inbox rows: one inbox
    statement and one commit. False for a duplicate. A failure rolls all back and propagates."""
    started = time.perf_counter()
    spent: list[float | None] = []  # each handler's own time; None for a duplicate
    with transaction.atomic():
        fresh = inbox.first_deliveries([envelope for envelope, _, _ in items])
        for envelope, subscription, event in items:
            if envelope.id not in fresh:
                spent.append(None)
                continue
            fresh.discard(envelope.id)  # the same event twice in one batch runs once
            began = time.perf_counter()
            with _context(envelope):
                subscription.handler(event, envelope)
            spent.append(time.perf_counter() - began)
    shared = (time.perf_counter() - started - sum(s for s in spent if s)) / len(items)
    for (envelope, _, _), own in zip(items, spent, strict=True):
        labels = {"service": service, "type": envelope.type}
        with _context(envelope):
            if own is None:
                log.info("duplicate %s %s skipped", envelope.type, envelope.id)
                metrics.DUPLICATES.labels(**labels).inc()
            else:
                metrics.HANDLER_DURATION.labels(**labels).observe(own + shared)
                metrics.CONSUMED.labels(**labels).inc()
                log.info("handled %s %s in %.1f ms", envelope.type, envelope.id, (own + shared) * 1000)
    return [own is not None for own in spent]


def _context(envelope: Envelope) -> AbstractContextManager[None]:
    return in_flight(
        correlation=envelope.correlation_id,
        causation=envelope.causation_id,
        event=envelope.id,
        kind=envelope.type,
    )


def _summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
