"""Signals around a publication, sent by whatever publishes outbox rows (the committing process's
dispatcher, a relay): a place for tracing and for fault injection in tests, with nothing of either
in the bus itself. No receiver, no cost beyond a check of an empty list."""

from __future__ import annotations

from django.dispatch import Signal

# who publishes: the sender of both signals
DISPATCHER, RELAY = "dispatcher", "relay"
# before a batch of outbox rows is sent to the broker: `count` is how many rows
before_publish = Signal()
# after the broker confirmed part of a batch, before the rows are marked: `confirmed` is how many
after_confirm = Signal()
