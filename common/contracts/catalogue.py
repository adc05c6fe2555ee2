"""The event catalogue, generated from the code: contracts (with their JSON Schemas), who publishes
them, who consumes which version from which queue; and the committed copies it is checked against.

Consumers are read from each service's own handler registry by asking that service
(`manage.py <svc> bus_subscriptions`), so this module never imports a service.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.cli import SERVICES
from common.contracts import compat
from common.contracts.base import Contract, registered, versions_of
from common.contracts.envelope import Envelope

PROJECT_DIR = Path(__file__).resolve().parents[2]
DOCS_DIR = PROJECT_DIR / "docs"
CONTRACTS_DIR = DOCS_DIR / "contracts"
ASYNCAPI_FILE = DOCS_DIR / "asyncapi.yaml"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class Consumer:
    service: str
    queue: str
    event_type: str
    version: int


def schema_path(event_type: str, version: int) -> str:
    return f"contracts/{event_type}/v{version}.schema.json"


def contract_schema(cls: type[Contract]) -> dict[str, Any]:
    schema = cls.model_json_schema(mode="validation")
    return {
        "$schema": DRAFT,
        "$id": schema_path(cls.event_type, cls.version),
        **schema,
        "x-event-type": cls.event_type,
        "x-version": cls.version,
        "x-producer": cls.producer,
    }


def envelope_schema() -> dict[str, Any]:
    return {
        "$schema": DRAFT,
        "$id": "contracts/envelope.schema.json",
        **Envelope.model_json_schema(mode="validation"),
    }


def consumers() -> list[Consumer]:
    found = []
    for service in SERVICES:
        result = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
            [sys.executable, str(PROJECT_DIR / "manage.py"), service, "bus_subscriptions"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=PROJECT_DIR,
        )
        if result.returncode != 0:
            raise RuntimeError(f"cannot read the subscriptions of {service}: {result.stderr[-2000:]}")
        described = json.loads(result.stdout)
        found += [
            Consumer(service, described["queue"], h["type"], h["version"]) for h in described["handles"]
        ]
    return found


def asyncapi(found: list[Consumer]) -> dict[str, Any]:
    """An AsyncAPI 3.0 document of the `events` exchange: one channel per event type."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type in sorted({t for t, _ in registered()}):
        channel_messages = {}
        for version in versions_of(event_type):
            cls = registered()[(event_type, version)]
            key = f"{event_type.replace('.', '_')}_v{version}"
            messages[key] = {
                "name": f"{event_type} v{version}",
                "title": f"{cls.__name__} ({event_type} v{version})",
                "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else event_type,
                "contentType": "application/json",
                "description": (
                    "A Celery protocol-2 task message: task name and routing key are the event type, "
                    "task id is the event id; the body is `[[envelope], {}, {...}]`."
                ),
                "payload": {
                    "allOf": [
                        {"$ref": "./contracts/envelope.schema.json"},
                        {
                            "type": "object",
                            "properties": {
                                "type": {"const": event_type},
                                "version": {"const": version},
                                "data": {"$ref": f"./{schema_path(event_type, version)}"},
                            },
                        },
                    ]
                },
                "bindings": {
                    "amqp": {"contentEncoding": "utf-8", "messageType": event_type, "bindingVersion": "0.3.0"}
                },
            }
            channel_messages[key] = {"$ref": f"#/components/messages/{key}"}
        channel_id = event_type.replace(".", "_")
        channels[channel_id] = {
            "address": event_type,
            "title": event_type,
            "messages": channel_messages,
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": "events",
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": "0.3.0",
                }
            },
        }
        latest_cls = registered()[(event_type, versions_of(event_type)[-1])]
        operations[f"{latest_cls.producer}_sends_{channel_id}"] = {
            "action": "send",
            "title": f"{latest_cls.producer} publishes {event_type} (through its outbox and relay)",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{channel_id}_v{latest_cls.version}"}],
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": "0.3.0"}},
        }
        for consumer in [c for c in found if c.event_type == event_type]:
            operations[f"{consumer.service}_receives_{channel_id}"] = {
                "action": "receive",
                "title": f"{consumer.service} handles {event_type} v{consumer.version} from {consumer.queue}",
                "description": "Older versions are upcast to this one; newer ones are dead-lettered.",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": [{"$ref": f"#/channels/{channel_id}/messages/{channel_id}_v{consumer.version}"}],
                "bindings": {"amqp": {"ack": True, "bindingVersion": "0.3.0"}},
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Event-driven suite: domain events",
            "version": "1.0.0",
            "description": "Every event travels on the `events` topic exchange with its type as routing "
            "key. Each consuming service reads its own quorum queue `<service>.events`. "
            "Generated from the code: `python manage.py users contracts write`.",
        },
        "defaultContentType": "application/json",
        "servers": {"rabbitmq": {"host": "127.0.0.1:5672", "protocol": "amqp", "protocolVersion": "0-9-1"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def expected(found: list[Consumer]) -> dict[str, str]:
    """Every generated file under docs/, by path relative to docs/, with its exact text."""
    files = {"contracts/envelope.schema.json": _json(envelope_schema())}
    for (event_type, version), cls in registered().items():
        if cls.producer == "test":
            continue
        files[schema_path(event_type, version)] = _json(contract_schema(cls))
    files["asyncapi.yaml"] = yaml.safe_dump(asyncapi(found), sort_keys=False, width=100)
    return files


def check(found: list[Consumer], docs: Path = DOCS_DIR) -> list[str]:
    """Problems: breaking changes to released versions (naming the field), then drift."""
    files = expected(found)
    problems = []
    committed = sorted(p.relative_to(docs).as_posix() for p in (docs / "contracts").rglob("*.schema.json"))
    for path in committed:
        if path not in files:
            problems.append(f"{path}: a released version is gone from the code; released versions stay")
            continue
        old, new = json.loads((docs / path).read_text()), json.loads(files[path])
        for change in compat.breaking_changes(old, new):
            problems.append(
                f"{path}: breaking change to a released version: {change}; "
                "publish it as a new version with an upcaster instead"
            )
    for path, text in files.items():
        current = docs / path
        if not current.exists():
            problems.append(f"{path}: not written yet (run `make contracts-write`)")
        elif current.read_text() != text and not any(p.startswith(path) for p in problems):
            problems.append(f"{path}: out of date with the code (run `make contracts-write`)")
    return problems


def write(found: list[Consumer], docs: Path = DOCS_DIR) -> list[str]:
    """Write every generated file; refuses (writes nothing) if a released version would break."""
    breaking = [p for p in check(found, docs) if "breaking change" in p or "is gone" in p]
    if breaking:
        raise ValueError("\n".join(breaking))
    written = []
    for path, text in expected(found).items():
        target = docs / path
        if not target.exists() or target.read_text() != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            written.append(path)
    return written


def table(found: list[Consumer]) -> str:
    rows = [("TYPE", "VERSIONS", "PRODUCER", "CONSUMERS (version, queue)")]
    for event_type in sorted({t for t, _ in registered()}):
        versions = versions_of(event_type)
        cls = registered()[(event_type, versions[-1])]
        if cls.producer == "test":
            continue
        readers = [f"{c.service} v{c.version} ({c.queue})" for c in found if c.event_type == event_type]
        rows.append(
            (event_type, ", ".join(f"v{v}" for v in versions), cls.producer, "; ".join(readers) or "-")
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows)


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
