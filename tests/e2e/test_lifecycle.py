"""The whole lifecycle through real processes: sign up → change email → two orders → cancel one →
delete the account → orders cancels the other by itself → notifications for each step, the last to
the new address, and nothing after the deletion. Then events out of order, straight to consumers."""

from __future__ import annotations

import uuid
from typing import Any

from common.contracts import Envelope, UserCreated, UserDeleted, UserUpdated
from tests.support.polling import wait_for
from tests.support.suite import Suite

ITEMS = {"items": [{"sku": "BOOK-1", "quantity": 1, "unit_price": "12.50"}]}


def notifications(suite: Suite, token: str) -> list[dict[str, Any]]:
    status, body = suite.call("GET", "notifications", "/api/notifications/", token=token)
    assert status == 200, body
    return sorted(body["results"], key=lambda n: n["created_at"])


def handled_by_notifications(suite: Suite, producer: str, event_type: str, aggregate_id: str) -> bool:
    """Whether notifications has handled the event `producer` published about that aggregate."""
    published = suite.sql(
        producer,
        "SELECT event_id FROM bus_outboxmessage WHERE event_type = %s AND aggregate_id = %s",
        (event_type, aggregate_id),
    )
    return bool(published) and bool(
        suite.sql("notifications", "SELECT 1 FROM bus_inboxmessage WHERE event_id = %s", (published[0][0],))
    )


def test_the_full_lifecycle_across_three_services(suite: Suite) -> None:
    # given a new user, welcomed at the address they signed up with
    user_id, email, token = suite.sign_up("life")
    wait_for(lambda: [n["kind"] for n in notifications(suite, token)] == ["welcome"], what="welcome")

    # when they change their email
    new_email = f"renamed-{uuid.uuid4().hex[:8]}@example.com"
    status, me = suite.call("PATCH", "users", "/api/users/me/", {"email": new_email}, token=token)
    assert status == 200 and me["email"] == new_email
    wait_for(
        lambda: (
            suite.sql(
                "notifications",
                "SELECT email FROM notifications_contact WHERE user_id = %s",
                (uuid.UUID(user_id),),
            )
            == [(new_email,)]
        ),
        what="the contact replica to follow",
    )

    # and place two orders (once orders knows them) and cancel one
    first = suite.place_order(token, ITEMS["items"], what="the first order")
    second = suite.place_order(token, ITEMS["items"], what="the second order")
    status, cancelled = suite.call("POST", "orders", f"/api/orders/{first['id']}/cancel/", token=token)
    assert status == 200 and cancelled["status"] == "cancelled"
    # (handled concurrently: the cancellation may be notified before the second order)
    wait_for(
        lambda: (
            sorted(n["kind"] for n in notifications(suite, token))
            == ["order_cancelled", "order_placed", "order_placed", "welcome"]
        ),
        what="four notifications",
    )

    # and finally delete their account (once the relay has sent the four mails)
    mine = (email, new_email)
    wait_for(lambda: sum(any(a in m for a in mine) for m in suite.mails()) == 4, what="the four mails sent")
    wait_for(
        lambda: {n["status"] for n in notifications(suite, token)} == {"sent"}, what="the four marked sent"
    )
    before_deletion = notifications(suite, token)
    mails_before = len(suite.mails())
    status, _ = suite.call("DELETE", "users", "/api/users/me/", token=token)
    assert status == 204

    # then orders cancels the remaining order by itself (order.cancelled, reason account_deleted)
    def second_status() -> str | None:
        _, body = suite.call("GET", "orders", f"/api/orders/{second['id']}/", token=token)
        return body["status"] if body["status"] == "cancelled" else None

    wait_for(second_status, what="the chain to cancel the second order")
    # and notifications handled that cancellation and the deletion without writing to anyone
    wait_for(
        lambda: (
            handled_by_notifications(suite, "orders", "order.cancelled", second["id"])
            and handled_by_notifications(suite, "users", "user.deleted", user_id)
        ),
        what="the chain to reach notifications",
    )
    # and forgot what the notifications said and where they went: they stay countable only
    after_deletion = notifications(suite, token)
    assert [(n["id"], n["kind"], n["status"]) for n in after_deletion] == [
        (n["id"], n["kind"], n["status"]) for n in before_deletion
    ]
    assert {(n["recipient"], n["subject"]) for n in after_deletion} == {("", "")}
    assert len(suite.mails()) == mails_before
    assert suite.sql(
        "notifications",
        "SELECT email, deleted_at IS NOT NULL FROM notifications_contact WHERE user_id = %s",
        (uuid.UUID(user_id),),
    ) == [("", True)]
    # the welcome went to the first address; everything after the change to the new one
    recipients = {n["kind"]: n["recipient"] for n in before_deletion}
    assert recipients == {"welcome": email, "order_placed": new_email, "order_cancelled": new_email}
    # and the deleted user can no longer sign in or order
    status, _ = suite.call("POST", "orders", "/api/orders/", ITEMS, token=token)
    assert status == 403


def test_events_out_of_order_straight_to_the_consumers_never_move_replicas_back(suite: Suite) -> None:
    user = uuid.uuid4()

    def send(event: UserCreated | UserUpdated | UserDeleted, version: int) -> Envelope:
        envelope = Envelope.wrap(event, producer="users", aggregate_id=str(user), aggregate_version=version)
        suite.publish_event(envelope)
        return envelope

    def seen_by_both(envelope: Envelope) -> bool:
        query = "SELECT 1 FROM bus_inboxmessage WHERE event_id = %s"
        return bool(
            suite.sql("orders", query, (envelope.id,)) and suite.sql("notifications", query, (envelope.id,))
        )

    def updated(version: int) -> UserUpdated:
        return UserUpdated(
            user_id=user, email=f"v{version}@example.com", first_name="A", last_name="B", changed=("email",)
        )

    def replicas() -> list[tuple[Any, ...]]:
        return suite.sql(
            "orders",
            "SELECT email, version, deleted_at IS NOT NULL FROM orders_customer WHERE id = %s",
            (user,),
        ) + suite.sql(
            "notifications",
            "SELECT email, version, deleted_at IS NOT NULL FROM notifications_contact WHERE user_id = %s",
            (user,),
        )

    # user.updated v3 before v2 (and before user.created)
    send(updated(3), 3)
    wait_for(lambda: replicas() == [("v3@example.com", 3, False)] * 2, what="v3 applied")
    late = [
        send(updated(2), 2),
        send(UserCreated(user_id=user, email="v1@example.com", first_name="A", last_name="B"), 1),
    ]
    wait_for(lambda: all(seen_by_both(e) for e in late), what="the late events to be handled")
    assert replicas() == [("v3@example.com", 3, False)] * 2

    # user.updated after user.deleted
    send(UserDeleted(user_id=user), 5)
    wait_for(lambda: replicas() == [("", 5, True)] * 2, what="the tombstones")
    resurrection = send(updated(4), 4)
    wait_for(lambda: seen_by_both(resurrection), what="the late update to be handled")
    assert replicas() == [("", 5, True)] * 2
