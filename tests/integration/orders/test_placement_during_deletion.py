"""An order placed while its customer's deletion is being handled ends cancelled, or is refused:
never open for ever. The placement and the deletion handler serialise on the customer's row."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

import common.bus.outbox.publish
from common.contracts import Envelope, UserCreated, UserDeleted
from orders_svc.orders import services
from orders_svc.orders.handlers import on_user_created, on_user_deleted
from orders_svc.orders.models import Order
from tests.support.concurrency import in_own_connection, waiting_on_a_lock
from tests.support.polling import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ITEMS: list[services.LineInput] = [{"sku": "A", "quantity": 1, "unit_price": Decimal("2.00")}]


def test_an_order_placed_while_the_deletion_is_handled_does_not_stay_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = uuid.uuid4()
    created = UserCreated(user_id=user, email="a@example.com", first_name="A", last_name="B")
    on_user_created(
        created, Envelope.wrap(created, producer="users", aggregate_id=str(user), aggregate_version=1)
    )

    # given a placement that has checked the customer and is about to commit …
    checked, go_on = threading.Event(), threading.Event()
    publish = common.bus.outbox.publish.publish

    def paused_publish(*args: Any, **kwargs: Any) -> Any:
        checked.set()
        assert go_on.wait(30), "the test never let the placement go on"
        return publish(*args, **kwargs)

    monkeypatch.setattr(services, "publish", paused_publish)

    def delete() -> None:
        deletion = UserDeleted(user_id=user)
        envelope = Envelope.wrap(deletion, producer="users", aggregate_id=str(user), aggregate_version=2)
        with transaction.atomic():
            on_user_deleted(deletion, envelope)

    with ThreadPoolExecutor(max_workers=2) as pool:
        placing = pool.submit(in_own_connection(lambda: services.place_order(customer_id=user, items=ITEMS)))
        assert checked.wait(30)
        # … when the user.deleted handler runs meanwhile
        deleting = pool.submit(in_own_connection(delete))
        wait_for(lambda: deleting.done() or waiting_on_a_lock(), what="the deletion to finish or to wait")
        deleting_done_first = deleting.done()
        go_on.set()
        placed = placing.result(timeout=30)
        deleting.result(timeout=30)

    # then the deletion waited for the placement, and cancelled the new order
    assert not deleting_done_first, "the deletion did not wait for the placement that had read the customer"
    order = Order.objects.get(id=placed.id)
    assert (order.status, order.cancel_reason) == ("cancelled", "account_deleted")
