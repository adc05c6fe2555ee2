"""Publishing to RabbitMQ with pipelined publisher confirms and unroutable detection.

Waiting for each message's confirm in turn caps a connection far below the broker's rate; instead a
whole batch is sent, then its confirms are drained. Every message is `mandatory`, so one that no
queue is bound for comes back (basic.return, always before its ack) instead of being confirmed and
silently dropped.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import amqp
from amqp.exceptions import ChannelError
from kombu import Connection as KombuConnection

from common.bus.amqp.connection import bounded
from common.bus.amqp.topology import EVENTS_EXCHANGE
from common.bus.amqp.wire import TaskMessage
from common.bus.internals import fast_paths, py_amqp


class BrokerUnavailable(Exception):
    """The broker cannot be reached or stopped answering: try again later, nothing is lost."""


class PublishRefused(Exception):
    """The broker closed the channel over what was sent (not a connectivity problem)."""


@dataclass
class BatchOutcome:
    confirmed: list[str] = field(default_factory=list)
    unroutable: dict[str, str] = field(default_factory=dict)
    nacked: list[str] = field(default_factory=list)


class ConfirmingPublisher:
    def __init__(
        self,
        url: str,
        *,
        confirm_timeout: float = 15.0,
        connect_timeout: float = 5.0,
        heartbeat: int = 30,
        name: str = "relay",
        fast: bool | None = None,
    ) -> None:
        parsed = KombuConnection(url)
        self._params: dict[str, Any] = dict(
            host=f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 5672}",
            userid=parsed.userid or "guest",
            password=parsed.password or "guest",
            virtual_host=parsed.virtual_host or "/",
            ssl=parsed.ssl,
            connect_timeout=connect_timeout,
            heartbeat=heartbeat,
            client_properties={"connection_name": name},
            **bounded(),  # a send into a silent link fills the socket's buffer, then would wait for ever
        )
        # every message says who publishes it; RabbitMQ refuses one whose user_id is not the
        # connection's user, and consumers check it against the contract's producer
        self.user_id: str = self._params["userid"]
        self.confirm_timeout = confirm_timeout
        self.fast = fast_paths() if fast is None else fast
        self._conn: amqp.Connection | None = None
        self._channel: Any = None
        self._next_tag = 1
        self._unconfirmed: OrderedDict[int, str] = OrderedDict()
        self._settled: dict[str, str] = {}  # message id -> confirmed | returned | nacked
        self._returned: dict[str, str] = {}

    # --- connection -----------------------------------------------------------------------------
    def _connect(self) -> None:
        try:
            conn = amqp.Connection(**self._params)
            conn.connect()
            channel: Any = conn.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            channel.exchange_declare(EVENTS_EXCHANGE.name, "topic", durable=True, auto_delete=False)
        except (OSError, amqp.exceptions.AMQPError) as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        self._conn, self._channel, self._next_tag = conn, channel, 1

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            # drop the socket without a handshake that could hang; a broken one may fail any way
            with contextlib.suppress(Exception):
                conn.collect()

    def keepalive(self, *, reconnect: bool = False) -> None:
        """Heartbeats while idle, so a dead connection is noticed before a publish; `reconnect` opens
        a lost one again (or raises BrokerUnavailable), so an idle relay's readiness tells the truth."""
        if self._conn is None:
            if reconnect:
                self._connect()
            return
        try:
            self._read_pending()
            self._conn.heartbeat_tick()
        except (OSError, amqp.exceptions.AMQPError):
            self.close()

    # --- confirms -------------------------------------------------------------------------------
    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        for message_id in self._settle(delivery_tag, multiple):
            self._settled[message_id] = "returned" if message_id in self._returned else "confirmed"

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        for message_id in self._settle(delivery_tag, multiple):
            self._settled[message_id] = "nacked"

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        message_id = str(message.properties.get("message_id"))
        self._returned[message_id] = (
            f"unroutable: no queue is bound to exchange {exchange!r} for routing key {routing_key!r} ({exc})"
        )

    def _settle(self, delivery_tag: int, multiple: bool) -> list[str]:
        if not multiple:
            message_id = self._unconfirmed.pop(delivery_tag, None)
            return [message_id] if message_id is not None else []
        settled = []
        while self._unconfirmed:
            tag = next(iter(self._unconfirmed))
            if tag > delivery_tag:
                break
            settled.append(self._unconfirmed.pop(tag))
        return settled

    # --- publishing -----------------------------------------------------------------------------
    def publish(self, messages: Sequence[TaskMessage]) -> BatchOutcome:
        """Send every message, then wait until the broker confirmed (or returned/nacked) each."""
        return self.wait(self.send(messages))

    def send(self, messages: Sequence[TaskMessage]) -> list[str]:
        """Send without waiting; the message ids to `wait` for. Several batches may be in flight."""
        if self._conn is None:
            self._connect()
        assert self._conn is not None
        sent = []
        writes = py_amqp.coalesced_writes(self._conn.transport) if self.fast else contextlib.nullcontext()
        try:
            with self._broker_errors(), writes:
                self._read_pending()
                for message in messages:
                    self._publish_one(message)
                    message_id = message.properties["message_id"]
                    self._unconfirmed[self._next_tag] = message_id
                    self._next_tag += 1
                    sent.append(message_id)
        except BaseException:
            self._reset()  # any error: tags were counted for frames that never left, start clean
            raise
        return sent

    def _publish_one(self, message: TaskMessage) -> None:
        if self.fast:
            fast = py_amqp.EventMessage(
                message.body, headers=message.headers, user_id=self.user_id, **message.properties
            )
            py_amqp.publish_unread(self._channel, fast, EVENTS_EXCHANGE.name, message.routing_key)
            return
        plain = amqp.Message(
            message.body, application_headers=message.headers, user_id=self.user_id, **message.properties
        )
        self._channel.basic_publish(plain, EVENTS_EXCHANGE.name, message.routing_key, mandatory=True)

    def _read_pending(self) -> None:
        """Take in confirms, returns and connection.blocked without waiting (basic_publish does so
        before every message)."""
        assert self._conn is not None
        with contextlib.suppress(TimeoutError):
            self._conn.drain_events(timeout=0)

    def wait(self, sent: list[str]) -> BatchOutcome:
        """Until the broker has settled every message of one `send`: its outcome."""
        deadline = time.monotonic() + self.confirm_timeout
        waiting_for = 0  # sent[:waiting_for] are settled: each id is looked up once, not per frame
        with self._broker_errors():
            while True:
                while waiting_for < len(sent) and sent[waiting_for] in self._settled:
                    waiting_for += 1
                if waiting_for == len(sent):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._conn is None:
                    self._reset()
                    raise BrokerUnavailable(
                        f"no publisher confirm within {self.confirm_timeout:.0f}s "
                        f"({len(self._unconfirmed)} unconfirmed)"
                    )
                with contextlib.suppress(TimeoutError):
                    self._conn.drain_events(timeout=remaining)
        outcome = BatchOutcome()
        for message_id in sent:
            status = self._settled.pop(message_id)
            if status == "confirmed":
                outcome.confirmed.append(message_id)
            elif status == "returned":
                outcome.unroutable[message_id] = self._returned.pop(message_id)
            else:
                outcome.nacked.append(message_id)
        return outcome

    @contextlib.contextmanager
    def _broker_errors(self) -> Iterator[None]:
        """What py-amqp raises, as the relay's two cases; either way the connection is dropped."""
        try:
            yield
        except ChannelError as exc:
            self._reset()
            raise PublishRefused(f"{type(exc).__name__}: {exc}") from exc
        except (OSError, amqp.exceptions.AMQPError) as exc:
            self._reset()
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _reset(self) -> None:
        """Drop the connection and whatever was in flight on it (those messages stay unconfirmed)."""
        self.close()
        self._unconfirmed.clear()
        self._settled.clear()
        self._returned.clear()
