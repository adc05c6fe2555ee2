"""The delivery limit is a broker policy: it changes on a queue full of events, and a queue an older
version declared with the limit as an argument moves to the new declaration keeping every event."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection, Producer, Queue

from common.bus.amqp import topology
from common.ops.queue_migration import handover_queue_name
from tests.support import broker
from tests.support.polling import wait_for
from tests.support.processes import BIN, ROOT, Process

SERVICE = "orders"
TYPES = ["user.created", "user.deleted"]
OLD_ARGUMENTS = {  # how versions up to 0178883 declared <svc>.events
    "x-queue-type": "quorum",
    "x-dead-letter-exchange": "events.dlx",
    "x-dead-letter-routing-key": "orders.events.dlq",
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
    "x-delivery-limit": 5,
}


@pytest.fixture
def vhost() -> Iterator[str]:
    name = broker.create_vhost("policy")
    yield name
    broker.delete_vhost(name)


def url(vhost: str) -> str:
    return broker.amqp_url(vhost)


def publish(vhost: str, ids: list[str], routing_key: str = "user.created") -> None:
    with Connection(url(vhost), transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.default_channel)
        for event_id in ids:
            producer.publish(
                b"[[], {}, {}]",
                exchange=topology.EVENTS_EXCHANGE.name,
                routing_key=routing_key,
                headers={"task": routing_key, "id": event_id},
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
            )


def held_ids(vhost: str, queue: str) -> list[str]:
    """Every message's id, taken off the queue."""
    ids: list[str] = []
    with Connection(url(vhost)) as conn:
        bound = Queue(queue, no_declare=True)(conn.default_channel)
        while (message := bound.get(no_ack=False)) is not None:
            ids.append(message.headers["id"])
            message.ack()
    return ids


def set_policies(vhost: str, limit: int) -> None:
    broker.SYSTEM.set_policies(vhost, dict(os.environ, BUS_BROKER_DELIVERY_LIMIT=str(limit)))


def declare_topology(vhost: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AMQP_URL=url(vhost))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [str(BIN / "python"), "manage.py", SERVICE, "declare_topology", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def deliveries_until_parked(vhost: str) -> int:
    """Deliver the queue's one message and return it unacked each time, as a crashing worker does,
    until RabbitMQ parks it: how many deliveries it got."""
    with Connection(url(vhost)) as conn:
        work = Queue(topology.queue_name(SERVICE), no_declare=True)(conn.default_channel)
        count = 0
        while (message := work.get(no_ack=False)) is not None:
            count += 1
            message.reject(requeue=True)
            assert count < 50, "never parked: the queue has no delivery limit"
        parked = Queue(topology.dead_letter_queue_name(SERVICE), no_declare=True)(conn.default_channel)
        wait_for(lambda: parked.get(no_ack=True) is not None, what="the message parked by RabbitMQ")
    return count


def test_the_delivery_limit_changes_in_place_keeping_what_the_queue_holds(vhost: str) -> None:
    with Connection(url(vhost)) as conn:
        topology.declare(conn, SERVICE, TYPES)
    set_policies(vhost, 3)
    waiting = [str(uuid.uuid4()) for _ in range(20)]
    publish(vhost, waiting)

    set_policies(vhost, 7)  # what an operator runs after changing BUS_BROKER_DELIVERY_LIMIT
    with Connection(url(vhost)) as conn:  # and a worker's next connect declares the same
        topology.declare(conn, SERVICE, TYPES)

    assert broker.SYSTEM.policies(vhost)[topology.queue_name(SERVICE)] == {"delivery-limit": 7}
    assert "x-delivery-limit" not in broker.queues(vhost)[topology.queue_name(SERVICE)]["arguments"]
    assert sorted(held_ids(vhost, topology.queue_name(SERVICE))) == sorted(waiting)
    publish(vhost, ["poison"])
    assert deliveries_until_parked(vhost) == 1 + 7  # the first delivery, then 7 redeliveries


def old_queue(vhost: str) -> None:
    with Connection(url(vhost)) as conn:
        queue = Queue(
            topology.queue_name(SERVICE),
            exchange=topology.EVENTS_EXCHANGE,
            routing_key="user.created",
            durable=True,
            queue_arguments=OLD_ARGUMENTS,
        )(conn.default_channel)
        queue.declare()
        queue.bind_to(topology.EVENTS_EXCHANGE.name, routing_key=topology.retry_routing_key(SERVICE))


def test_an_old_queue_is_refused_with_the_way_out(vhost: str) -> None:
    old_queue(vhost)
    with Connection(url(vhost)) as conn, pytest.raises(topology.QueueOutOfDate, match="--migrate"):
        topology.declare(conn, SERVICE, TYPES)  # what a worker does on connecting
    done = declare_topology(vhost)
    assert done.returncode != 0
    assert "declare_topology --migrate" in done.stderr and "x-delivery-limit" in done.stderr


def test_a_worker_on_an_old_queue_stops_saying_how_to_migrate(vhost: str, tmp_path: Path) -> None:
    old_queue(vhost)
    env = dict(os.environ, AMQP_URL=url(vhost), WORKER_HTTP_PORT="0", SUITE_VAR_DIR=str(tmp_path))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    argv = [str(BIN / "celery"), "-A", "orders_svc", "worker", "-Q", topology.queue_name(SERVICE)]
    worker = Process(
        "worker",
        [*argv, "--concurrency=1", "--without-mingle", "--without-gossip"],
        env,
        tmp_path / "worker.log",
    )
    worker.start()
    try:
        wait_for(lambda: not worker.alive(), timeout=60, what="the worker to stop")
    finally:
        worker.stop()
    assert "QueueOutOfDate" in worker.log() and "declare_topology --migrate" in worker.log()


def test_migrating_an_old_queue_keeps_every_event_even_those_published_meanwhile(vhost: str) -> None:
    old_queue(vhost)
    before = [str(uuid.uuid4()) for _ in range(200)]
    publish(vhost, before)
    publish(vhost, ["retry-1"], routing_key=topology.retry_routing_key(SERVICE))
    meanwhile: list[str] = []
    stop = threading.Event()

    def producer() -> None:  # as a relay does: what is not confirmed is sent again
        while not stop.is_set():
            batch = [str(uuid.uuid4()) for _ in range(5)]
            while True:
                try:
                    publish(vhost, batch)
                    break
                except Exception:  # noqa: BLE001 - RabbitMQ 3.10 closes a publisher's channel
                    continue  # (INTERNAL_ERROR) when a quorum queue it routes to is deleted
            meanwhile.extend(batch)

    thread = threading.Thread(target=producer)
    thread.start()
    try:
        done = declare_topology(vhost, "--migrate")
    finally:
        stop.set()
        thread.join()
    assert done.returncode == 0, done.stderr
    moved = int(done.stdout.split("moved ", 1)[1].split(" ", 1)[0])
    assert moved >= 201  # what the old queue held, and perhaps some published since

    queues = broker.queues(vhost)
    assert handover_queue_name(SERVICE) not in queues
    assert queues[topology.queue_name(SERVICE)]["arguments"] == {
        k: v for k, v in OLD_ARGUMENTS.items() if k != "x-delivery-limit"
    }
    held = held_ids(vhost, topology.queue_name(SERVICE))
    missing = {*before, "retry-1", *meanwhile} - set(held)
    assert not missing, f"{len(missing)} event(s) lost"
    assert meanwhile, "nothing was published during the migration"
    # run again, there is nothing to do
    again = declare_topology(vhost, "--migrate")
    assert again.returncode == 0 and "moved" not in again.stdout


def test_the_migration_refuses_while_workers_consume(vhost: str) -> None:
    old_queue(vhost)
    publish(vhost, ["held"])
    with Connection(url(vhost)) as conn:
        consumer = conn.Consumer(
            Queue(topology.queue_name(SERVICE), no_declare=True), callbacks=[lambda body, message: None]
        )
        consumer.qos(prefetch_count=1)
        consumer.consume()
        done = declare_topology(vhost, "--migrate")
        consumer.cancel()
    assert done.returncode != 0
    assert "stop orders's workers first" in done.stderr
    assert broker.queues(vhost)[topology.queue_name(SERVICE)]["arguments"] == OLD_ARGUMENTS
    assert held_ids(vhost, topology.queue_name(SERVICE)) == ["held"]
