"""Dead letters on the real broker: park, collect into the table, list, show, replay (own queue
only), purge, and the admin page that does the same."""

from __future__ import annotations

import json
import threading
import uuid
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from kombu import Connection, Producer
from pytest_django import Settings

from common.bus.amqp import topology
from common.bus.amqp.connection import raw_channel
from common.bus.amqp.wire import TaskMessage, envelope_message
from common.bus.consume import deadletters
from common.bus.consume.deadletters import Failure
from common.bus.ops.deadletters import DeadLetterQueue
from common.contracts import Envelope, UserCreated
from tests.support.broker import queue_depth

SERVICE = "orders"  # any consuming service; its queues are declared in this test's vhost
pytestmark = pytest.mark.django_db(transaction=True)  # the dead letters' table


@pytest.fixture
def dlq() -> DeadLetterQueue:
    with Connection(settings.AMQP_URL) as conn:
        topology.declare(conn, SERVICE, ["user.created"])
        topology.declare(conn, "notifications", ["user.created"])
        for queue in ("orders.events", "orders.events.dlq", "notifications.events"):
            raw_channel(conn).queue_purge(queue)
    return DeadLetterQueue(settings.AMQP_URL, SERVICE)


def park_one(reason: str = "boom") -> tuple[str, Envelope]:
    event = UserCreated(user_id=uuid.uuid4(), email="a@example.com", first_name="A", last_name="B")
    envelope = Envelope.wrap(event, producer="users", aggregate_id="a", aggregate_version=1)
    message = envelope_message(envelope, origin="test")
    raw = TaskMessage(
        body=message.body, headers=message.headers, properties=message.properties, routing_key="user.created"
    )
    with Connection(settings.AMQP_URL, transport_options={"confirm_publish": True}) as conn:
        parked = deadletters.park(
            Producer(conn.default_channel),
            SERVICE,
            raw,
            Failure("error", "builtins.ValueError", reason, "Traceback…", 4),
        )
    return parked, envelope


def test_parked_messages_carry_why(dlq: DeadLetterQueue) -> None:
    parked, envelope = park_one("the handler exploded")

    [letter] = dlq.page()[0]

    assert letter.id == parked
    assert (letter.event_type, letter.event_id) == ("user.created", str(envelope.id))
    assert (letter.kind, letter.exception_type, letter.reason) == (
        "error",
        "builtins.ValueError",
        "the handler exploded",
    )
    assert letter.attempts == 4 and letter.service == SERVICE
    assert letter.first_failure_at and letter.last_failure_at and letter.traceback
    assert json.loads(bytes(letter.body))[0][0]["id"] == str(envelope.id)
    assert dlq.depth() == 1  # listing changed nothing
    assert queue_depth(settings.AMQP_URL, "orders.events.dlq") == 0  # collected into the table


def test_every_reader_sees_every_dead_letter_however_often_they_list(dlq: DeadLetterQueue) -> None:
    parked = {park_one()[0] for _ in range(3)}
    seen: list[tuple[set[str], int]] = []

    def operator() -> None:
        mine = DeadLetterQueue(settings.AMQP_URL, SERVICE)
        for _ in range(25):
            letters, total = mine.page()
            seen.append(({d.id for d in letters}, total))

    # two operators list at the same time, again and again
    operators = [threading.Thread(target=operator) for _ in range(2)]
    for thread in operators:
        thread.start()
    for thread in operators:
        thread.join()

    assert len(seen) == 50 and all(listing == (parked, 3) for listing in seen)
    # and listing delivered nothing again: no delivery count grows toward a limit
    assert all(int(d.headers.get("x-delivery-count") or 0) == 0 for d in dlq.page()[0])


def test_replay_goes_to_the_service_queue_only_with_the_same_event_id(dlq: DeadLetterQueue) -> None:
    parked, envelope = park_one()
    park_one()

    replayed = dlq.replay([parked[:8]])

    assert [d.id for d in replayed] == [parked]
    assert dlq.depth() == 1
    assert queue_depth(settings.AMQP_URL, "orders.events") == 1
    assert queue_depth(settings.AMQP_URL, "notifications.events") == 0  # never another service
    with Connection(settings.AMQP_URL) as conn:
        message = raw_channel(conn).basic_get("orders.events", no_ack=True)
    assert message.properties["application_headers"]["id"] == str(envelope.id)
    assert "x-exception-type" not in message.properties["application_headers"]


def test_purge_by_id_and_all(dlq: DeadLetterQueue) -> None:
    first, _ = park_one()
    park_one()
    park_one()
    assert dlq.purge([first]) == 1
    assert dlq.depth() == 2
    assert dlq.purge(None) == 2 and dlq.depth() == 0


def test_the_admin_lists_dead_letters_and_replays_a_selection(
    dlq: DeadLetterQueue, settings: Settings
) -> None:
    settings.SERVICE_NAME = SERVICE  # the page shows the queue of the service it runs in
    parked, _ = park_one("shown in the admin")
    other, _ = park_one()
    get_user_model().objects.create_superuser("root@example.com", "S3cure-passphrase")
    client = Client()
    assert client.login(email="root@example.com", password="S3cure-passphrase")

    page = client.get("/admin/bus/deadletter/")
    assert page.status_code == 200
    html = page.content.decode()
    assert parked in html and other in html and "shown in the admin" in html

    response = client.post("/admin/bus/deadletter/", {"action": "replay", "ids": [parked]})
    assert response.status_code == 302
    assert [d.id for d in dlq.page()[0]] == [other]
    assert queue_depth(settings.AMQP_URL, "orders.events") == 1


def test_listings_say_how_many_they_show_of_how_many_there_are(
    dlq: DeadLetterQueue, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SERVICE_NAME = SERVICE
    parked = [park_one()[0] for _ in range(3)]

    # the API: the first two, of three
    letters, total = dlq.page(limit=2)
    assert [d.id for d in letters] == parked[:2] and total == 3

    # the command: a line per letter shown, and the count of all
    out = StringIO()
    call_command("dlq", "list", "--limit", "1", stdout=out)
    assert out.getvalue().splitlines()[-1] == (
        f"1 of 3 dead letter(s) in {SERVICE}.events.dlq (--limit 3 lists them all)"
    )
    assert dlq.depth() == 3  # the listing took none away

    # the admin page, which shows a bounded number
    monkeypatch.setattr("common.bus.admin.DEAD_LETTERS_SHOWN", 2)
    get_user_model().objects.create_superuser("root@example.com", "S3cure-passphrase")
    client = Client()
    assert client.login(email="root@example.com", password="S3cure-passphrase")
    html = client.get("/admin/bus/deadletter/").content.decode()
    assert "Showing the first 2 of 3 dead letters." in html


def test_the_command_shows_replays_and_purges_by_id_prefix(dlq: DeadLetterQueue, settings: Settings) -> None:
    settings.SERVICE_NAME = SERVICE
    parked, envelope = park_one("shown by the command")
    other, _ = park_one()

    # show: every field, one per line, and the body
    out = StringIO()
    call_command("dlq", "show", parked[:8], stdout=out)
    shown = out.getvalue()
    for line in ("attempts:       4", f"service:        {SERVICE}", "kind:           error", "Traceback…"):
        assert line in shown, line
    assert "reason:         shown by the command" in shown and str(envelope.id) in shown
    assert "x-death:" not in shown

    # replay one, then purge the rest without asking
    out = StringIO()
    call_command("dlq", "replay", parked, stdout=out)
    assert out.getvalue().splitlines()[-1] == f"1 dead letter(s) sent back to {SERVICE}.events"
    out = StringIO()
    call_command("dlq", "purge", "--noinput", stdout=out)
    assert out.getvalue().strip() == "purged 1 dead letter(s)" and dlq.depth() == 0
    assert other not in shown


def test_the_command_prints_a_dead_letters_control_characters_escaped(
    dlq: DeadLetterQueue, settings: Settings
) -> None:
    """Header text and reasons come from whoever published the message: printed raw, an ESC
    sequence would rewrite the operator's terminal (here: clear it, retitle the window)."""
    settings.SERVICE_NAME = SERVICE
    parked, _ = park_one("boom\x1b[2J\x1b]0;pwned\x07")
    for args in (("list",), ("show", parked)):
        out = StringIO()
        call_command("dlq", *args, stdout=out)
        printed = out.getvalue()
        assert "\x1b" not in printed and "\x07" not in printed, args
        assert "\\x1b[2J\\x1b]0;pwned\\x07" in printed, args
