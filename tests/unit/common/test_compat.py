"""The compatibility gate: a breaking change to a released contract version is refused, naming the
field; a compatible change is not."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from pydantic import EmailStr, Field

from common.contracts import Contract, OrderPlaced, OrderPlacedV1, UserCreated
from common.contracts.catalogue import DOCS_DIR
from common.contracts.compat import breaking_changes
from common.contracts.types import Name


def schema(model: type[Contract]) -> dict[str, Any]:
    return model.model_json_schema()


class WithoutFirstName(Contract):
    user_id: uuid.UUID
    email: EmailStr
    last_name: Name


class WithNewRequired(UserCreated):
    nickname: str


class WithNewOptional(UserCreated):
    nickname: str = ""


class WithShorterNames(Contract):
    user_id: uuid.UUID
    email: EmailStr
    first_name: str = Field(max_length=20)
    last_name: Name


class WithIntegerId(Contract):
    user_id: int
    email: EmailStr
    first_name: Name
    last_name: Name


def test_a_removed_or_renamed_field_is_breaking_and_named() -> None:
    assert breaking_changes(schema(UserCreated), schema(WithoutFirstName)) == [
        "field 'first_name' removed or renamed"
    ]


def test_a_new_required_field_is_breaking_and_named() -> None:
    [problem] = breaking_changes(schema(UserCreated), schema(WithNewRequired))
    assert "field 'nickname': new required field" in problem


def test_a_narrowed_type_or_tightened_constraint_is_breaking_and_named() -> None:
    assert breaking_changes(schema(UserCreated), schema(WithShorterNames)) == [
        "field 'first_name': maxLength tightened to 20 (was 150)"
    ]
    problems = breaking_changes(schema(UserCreated), schema(WithIntegerId))
    assert any(p.startswith("field 'user_id': no longer accepts string") for p in problems), problems


def test_a_new_optional_field_is_compatible() -> None:
    assert breaking_changes(schema(UserCreated), schema(WithNewOptional)) == []


def test_order_placed_v2_would_have_broken_v1() -> None:
    assert breaking_changes(schema(OrderPlacedV1), schema(OrderPlaced)) == [
        "field 'currency': new required field (give it a default, or make a new version)"
    ]  # which is why currency came as v2, with an upcaster


def test_the_gate_fails_make_test_naming_the_field(tmp_path: Path) -> None:
    # given committed copies in which user.created v1 still has a field the code no longer has
    docs = tmp_path / "docs"
    shutil.copytree(DOCS_DIR, docs)
    released = docs / "contracts" / "user.created" / "v1.schema.json"
    released.write_text(
        released.read_text().replace('"properties": {', '"properties": {"nickname": {"type": "string"}, ', 1)
    )

    # when the gate runs, as make test runs it
    result = subprocess.run(
        [sys.executable, "manage.py", "users", "contracts", "check", "--docs", str(docs)],
        capture_output=True,
        text=True,
        timeout=300,
    )

    # then it fails, naming the version, the field, and what to do instead
    assert result.returncode == 1
    assert "contracts/user.created/v1.schema.json: breaking change to a released version" in result.stderr
    assert "field 'nickname' removed or renamed" in result.stderr
    assert "publish it as a new version with an upcaster instead" in result.stderr


def test_the_gate_passes_on_the_committed_copies_and_flags_drift(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(DOCS_DIR, docs)
    ok = subprocess.run(
        [sys.executable, "manage.py", "users", "contracts", "check", "--docs", str(docs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    (docs / "asyncapi.yaml").write_text("asyncapi: 3.0.0\n")
    (docs / "contracts" / "order.cancelled" / "v1.schema.json").unlink()
    drift = subprocess.run(
        [sys.executable, "manage.py", "users", "contracts", "check", "--docs", str(docs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert drift.returncode == 1
    assert "asyncapi.yaml: out of date with the code" in drift.stderr
    assert "contracts/order.cancelled/v1.schema.json: not written yet" in drift.stderr


def test_the_catalogue_lists_types_versions_producers_consumers_and_queues() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "users", "contracts", "catalogue"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "v1, v2" in lines["order.placed"] and "orders" in lines["order.placed"]
    assert "notifications v2 (notifications.events)" in lines["order.placed"]
    assert "orders v1 (orders.events)" in lines["user.deleted"]
