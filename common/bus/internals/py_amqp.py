"""py-amqp internals the confirming publisher's fast path uses (`BUS_FAST_PATHS`); each bought a
share of the relay's throughput (docs/performance.md), and without them the publisher uses
`basic_publish` and `amqp.Message` as documented.

- `coalesced_writes` swaps `transport._write` for a batch: py-amqp makes one system call per frame.
- `publish_unread` calls `channel.send_method` as `basic_publish` does, minus the non-blocking read
  it makes before every message (the publisher reads once per batch).
- `EventMessage` overrides `Message._serialize_properties`: our messages always carry the same five
  properties with string headers, so encoding them is concatenation (the exact bytes py-amqp makes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from struct import pack
from typing import Any

import amqp
from amqp import spec

FLUSH_AT = 256 * 1024  # bytes of frames written per system call while a batch is sent
_BASIC_PUBLISH = b"\x00\x3c\x00\x28"  # class 60 (basic), method 40 (publish)
_METHOD, _HEADER, _BODY = 1, 2, 3


def _is_publication(data: bytes | memoryview) -> bool:
    """A write of basic.publish (method frame, with its content frames) or of a content frame."""
    kind = data[0]
    return kind in (_HEADER, _BODY) or (kind == _METHOD and bytes(data[7:11]) == _BASIC_PUBLISH)


@contextlib.contextmanager
def coalesced_writes(transport: Any, flush_at: int = FLUSH_AT) -> Iterator[None]:
    """Write a batch's publications in a few large writes. Only whole publication frames are held
    back: anything else py-amqp writes meanwhile (a channel's close-ok, say) flushes what is held
    and goes out at once. What an exception leaves unsent is dropped with the connection."""
    socket_write = transport._write
    pending: list[bytes] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if pending:
            data = b"".join(pending)
            pending.clear()
            size = 0
            socket_write(data)

    def buffer(data: bytes | memoryview) -> None:
        nonlocal size
        if not _is_publication(data):
            flush()
            socket_write(data)
            return
        pending.append(bytes(data))  # py-amqp reuses the buffer it hands over
        size += len(data)
        if size >= flush_at:
            flush()

    transport._write = buffer
    try:
        yield
        flush()
    finally:
        transport._write = socket_write


def publish_unread(channel: Any, message: amqp.Message, exchange: str, routing_key: str) -> None:
    """`basic_publish(message, exchange, routing_key, mandatory=True)` without its read."""
    channel.send_method(spec.Basic.Publish, "Bssbb", (0, exchange, routing_key, True, False), message)


# AMQP basic properties, flags by position: content_type 15, content_encoding 14, headers 13,
# delivery_mode 12, message_id 7, user_id 4.
_FLAGS = pack(">H", (1 << 15) | (1 << 14) | (1 << 13) | (1 << 12) | (1 << 7) | (1 << 4))


def _shortstr(value: str) -> bytes:
    data = value.encode()
    return bytes((len(data),)) + data


def _table(headers: dict[str, str]) -> bytes:
    parts = []
    for key, value in headers.items():
        data = value.encode()
        parts.append(_shortstr(key) + b"S" + pack(">I", len(data)) + data)
    body = b"".join(parts)
    return pack(">I", len(body)) + body


class EventMessage(amqp.Message):
    """Only for content_type, content_encoding, str-valued headers, delivery_mode, message_id and
    user_id."""

    def __init__(self, body: bytes, *, headers: dict[str, str], **properties: Any) -> None:
        super().__init__(body, application_headers=headers, **properties)
        self._encoded = b"".join(
            (
                _FLAGS,
                _shortstr(properties["content_type"]),
                _shortstr(properties["content_encoding"]),
                _table(headers),
                bytes((properties["delivery_mode"],)),
                _shortstr(properties["message_id"]),
                _shortstr(properties["user_id"]),
            )
        )

    def _serialize_properties(self) -> Any:
        return self._encoded
