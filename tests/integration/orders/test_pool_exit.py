"""A pool process that exits (its task quota, a scale-down, a warm shutdown) publishes what its
dispatcher has queued before it goes: billiard ends it with `os._exit`, so `atexit` never runs."""

from __future__ import annotations

import os
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from kombu import Connection

from common.bus.amqp.topology import EVENTS_EXCHANGE
from common.bus.amqp.wire import envelope_message
from common.bus.models import OutboxMessage
from common.contracts import Envelope, UserCreated, UserDeleted
from orders_svc.orders import services
from orders_svc.orders.handlers import on_user_created
from tests.integration.conftest import database_url_of_this_session
from tests.support.broker import publish_task
from tests.support.polling import wait_for
from tests.support.processes import BIN, Process, free_port, wait_log, with_fault
from tests.support.tap import EventTap

pytestmark = pytest.mark.django_db(transaction=True)
ITEMS: list[services.LineInput] = [{"sku": "A", "quantity": 1, "unit_price": Decimal("2.00")}]


def publish(envelope: Envelope) -> None:
    message = envelope_message(envelope, origin="test")
    with Connection(os.environ["AMQP_URL"], transport_options={"confirm_publish": True}) as conn:
        publish_task(conn, message, exchange=EVENTS_EXCHANGE)


def test_a_pool_process_that_exits_publishes_what_it_queued_first(
    tmp_path: Path, request: pytest.FixtureRequest, tap: EventTap
) -> None:
    # given a customer with an open order
    user = uuid.uuid4()
    created = UserCreated(user_id=user, email="q@example.com", first_name="Q", last_name="R")
    on_user_created(
        created, Envelope.wrap(created, producer="users", aggregate_id=str(user), aggregate_version=1)
    )
    order = services.place_order(customer_id=user, items=ITEMS)
    # and a worker whose pool process exits after one job and whose dispatcher publishes 2 s after
    # the commit; no relay runs, and the dispatcher's lease (60 s) outlasts the test
    worker = Process(
        "worker",
        [
            str(BIN / "celery"),
            "-A",
            "orders_svc",
            "worker",
            "-Q",
            "orders.events",
            "-n",
            "exiting@%h",
            "--concurrency=1",
            "--max-tasks-per-child=1",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "INFO",
        ],
        dict(
            os.environ,
            ORDERS_DATABASE_URL=database_url_of_this_session(),
            WORKER_HTTP_PORT=str(free_port()),
            **with_fault("dispatch-slow"),
        ),
        tmp_path / "worker.log",
    ).start()
    request.addfinalizer(worker.stop)
    wait_log(worker, "ready.")

    # when the customer's deletion is handled (the order is cancelled, order.cancelled queued) and
    # the pool process exits right after
    deleted = UserDeleted(user_id=user)
    publish(Envelope.wrap(deleted, producer="users", aggregate_id=str(user), aggregate_version=2))

    # then order.cancelled reached the broker all the same, and its row is marked published
    wait_for(
        lambda: any(
            m["envelope"]["type"] == "order.cancelled" and m["envelope"]["aggregate_id"] == str(order.id)
            for m in tap.drain()
        ),
        timeout=30,
        what="order.cancelled on the broker",
    )
    wait_for(
        lambda: (
            OutboxMessage.objects.get(event_type="order.cancelled", aggregate_id=str(order.id)).status
            == OutboxMessage.Status.PUBLISHED
        ),
        what="its row marked published",
    )
