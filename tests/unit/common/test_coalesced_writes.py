"""The relay's publisher writes a batch's frames in a few system calls, bytes unchanged."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common.bus.amqp_publisher import coalesced_writes


class Transport:
    """py-amqp's transport as the publisher sees it: `_write` is the socket's sendall."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []
        self._write: Callable[[bytes | memoryview], None] = self._sendall

    def _sendall(self, data: bytes | memoryview) -> None:
        self.calls.append(bytes(data))


def test_a_batch_goes_out_in_one_write_with_its_bytes_unchanged() -> None:
    transport = Transport()
    frame = bytearray(b"aaaa")
    with coalesced_writes(transport):
        transport._write(memoryview(frame))
        frame[:] = b"bbbb"  # py-amqp reuses the buffer it hands over
        transport._write(memoryview(frame))
        assert transport.calls == []
    assert transport.calls == [b"aaaabbbb"]
    transport._write(b"after")  # the socket's own write is back
    assert transport.calls[-1] == b"after"


def test_a_large_batch_is_written_in_chunks_of_whole_frames() -> None:
    transport = Transport()
    with coalesced_writes(transport, flush_at=10):
        for _ in range(5):
            transport._write(b"1234")
    assert transport.calls == [b"123412341234", b"12341234"]


def test_an_error_mid_batch_writes_nothing_more_and_restores_the_socket_write() -> None:
    transport = Transport()

    def send_half_a_batch() -> None:
        with coalesced_writes(transport):
            transport._write(b"half of a batch")
            raise RuntimeError("the channel closed")

    with pytest.raises(RuntimeError):
        send_half_a_batch()
    assert transport.calls == []
    transport._write(b"next")
    assert transport.calls == [b"next"]
