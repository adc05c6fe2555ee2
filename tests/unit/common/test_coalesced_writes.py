"""The relay's publisher writes a batch's frames in a few system calls, bytes unchanged."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common.bus.internals.py_amqp import coalesced_writes

PUBLISH = b"\x01\x00\x01\x00\x00\x00\x0b\x00\x3c\x00\x28"  # method frame: basic.publish
HEADER, BODY = b"\x02\x00\x01", b"\x03\x00\x01"
CLOSE_OK = b"\x01\x00\x01\x00\x00\x00\x04\x00\x14\x00\x29"  # method frame: channel.close-ok


class Transport:
    """py-amqp's transport as the publisher sees it: `_write` is the socket's sendall."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []
        self._write: Callable[[bytes | memoryview], None] = self._sendall

    def _sendall(self, data: bytes | memoryview) -> None:
        self.calls.append(bytes(data))


def test_a_batch_goes_out_in_one_write_with_its_bytes_unchanged() -> None:
    transport = Transport()
    frame = bytearray(PUBLISH + b"a")
    with coalesced_writes(transport):
        transport._write(memoryview(frame))
        frame[-1:] = b"b"  # py-amqp reuses the buffer it hands over
        transport._write(memoryview(frame))
        transport._write(BODY)
        assert transport.calls == []
    assert transport.calls == [PUBLISH + b"a" + PUBLISH + b"b" + BODY]
    transport._write(b"after")  # the socket's own write is back
    assert transport.calls[-1] == b"after"


def test_a_large_batch_is_written_in_chunks_of_whole_frames() -> None:
    transport = Transport()
    with coalesced_writes(transport, flush_at=10):
        for _ in range(5):
            transport._write(HEADER + b"1")
    assert transport.calls == [HEADER + b"1" + HEADER + b"1" + HEADER + b"1", HEADER + b"1" + HEADER + b"1"]


def test_any_other_frame_flushes_what_is_held_and_goes_out_at_once() -> None:
    # a channel the broker closes mid-batch: py-amqp answers close-ok and waits for the reopen
    transport = Transport()
    with coalesced_writes(transport):
        transport._write(PUBLISH)
        transport._write(CLOSE_OK)
        assert transport.calls == [PUBLISH, CLOSE_OK]
        transport._write(PUBLISH)
    assert transport.calls == [PUBLISH, CLOSE_OK, PUBLISH]


def test_an_error_mid_batch_writes_nothing_more_and_restores_the_socket_write() -> None:
    transport = Transport()

    def send_half_a_batch() -> None:
        with coalesced_writes(transport):
            transport._write(PUBLISH)
            raise RuntimeError("the channel closed")

    with pytest.raises(RuntimeError):
        send_half_a_batch()
    assert transport.calls == []
    transport._write(b"next")
    assert transport.calls == [b"next"]
