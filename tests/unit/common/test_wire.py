from __future__ import annotations

import json
import uuid

from common.bus.amqp.wire import envelope_message
from common.contracts import Envelope, UserCreated


def test_an_event_is_a_celery_task_message_named_by_its_type() -> None:
    event = UserCreated(user_id=uuid.uuid4(), email="ada@example.com", first_name="Ada", last_name="L")
    envelope = Envelope.wrap(event, producer="users", aggregate_id=str(event.user_id), aggregate_version=1)

    message = envelope_message(envelope, origin="users")

    assert message.routing_key == "user.created"
    assert message.headers["task"] == "user.created"
    assert message.headers["id"] == str(envelope.id)
    assert message.properties["message_id"] == str(envelope.id)
    assert message.properties["delivery_mode"] == 2
    assert message.properties["content_type"] == "application/json"
    args, kwargs, embed = json.loads(message.body)
    assert args == [envelope.to_json_dict()] and kwargs == {}
    assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}


def test_flower_sees_the_event_but_not_its_personal_data() -> None:
    event = UserCreated(user_id=uuid.uuid4(), email="ada@example.com", first_name="Ada", last_name="L")
    envelope = Envelope.wrap(event, producer="users", aggregate_id=str(event.user_id), aggregate_version=1)

    message = envelope_message(envelope, origin="users")

    assert "ada@example.com" not in message.headers["argsrepr"]
    assert "user.created" in message.headers["argsrepr"]
