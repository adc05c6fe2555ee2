"""The private behaviour of Celery, kombu, py-amqp, billiard and prometheus-client that
`common/bus/internals/` relies on, pinned at the pinned versions: an upgrade fails here, naming
what to check again, instead of misbehaving in production."""

from __future__ import annotations

import ast
import contextlib
import inspect
import pickle
import socket
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from weakref import WeakSet

import amqp
import pytest
from amqp import spec
from amqp.method_framing import frame_writer
from amqp.serialization import dumps
from amqp.transport import TCPTransport
from billiard.pool import ApplyResult
from celery.fixups import django as django_fixup
from celery.utils.collections import LimitedSet
from celery.worker import request as celery_request
from celery.worker import state, strategy

from common.bus.consume.failures import Park
from common.bus.internals import celery, kombu, prometheus, py_amqp

ROOT = Path(__file__).resolve().parents[3]
PINNED = {
    "celery": "5.7.0",
    "kombu": "5.7.0",
    "amqp": "5.4.2",
    "billiard": "4.3.2",
    "prometheus_client": "0.26.0",
}
# modules only common/bus/internals/ may import (the private parts of these libraries)
PRIVATE = (
    "amqp.spec",
    "celery.concurrency",
    "celery.utils.serialization",
    "celery.worker.state",
    "celery.worker.strategy",
    "celery.app.trace",
    "kombu.transport.native_delayed_delivery",
    "prometheus_client.values",
    "billiard.pool",
)


@pytest.mark.parametrize("package", sorted(PINNED))
def test_the_libraries_are_the_versions_these_contracts_were_checked_against(package: str) -> None:
    assert version(package) == PINNED[package], (
        f"{package} changed: check each use in common/bus/internals/ against the new version, "
        "then update the pin here and in requirements/base.txt"
    )


def test_only_the_internals_package_imports_private_library_modules() -> None:
    offenders = []
    for path in (ROOT / "common").rglob("*.py"):
        if "internals" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith(PRIVATE)]
    assert not offenders


# --- py-amqp --------------------------------------------------------------------------------------
def frames(message: amqp.Message, *, coalesced: bool = False, times: int = 1) -> list[bytes]:
    """What py-amqp's own frame writer hands the socket for `times` publications of `message`."""
    transport = TCPTransport("127.0.0.1:1")  # never connected
    written: list[bytes] = []
    transport._write = lambda data: written.append(bytes(data))  # type: ignore[attr-defined]
    write_frame = frame_writer(SimpleNamespace(frame_max=131072, bytes_sent=0), transport)
    args = dumps("Bssbb", (0, "events", "user.created", True, False))
    if coalesced:
        with py_amqp.coalesced_writes(transport):
            for _ in range(times):
                write_frame(1, 1, spec.Basic.Publish, args, message)
    else:
        for _ in range(times):
            write_frame(1, 1, spec.Basic.Publish, args, message)
    return written


PROPERTIES: dict[str, Any] = {
    "content_type": "application/json",
    "content_encoding": "utf-8",
    "delivery_mode": 2,
    "message_id": "8c1e7f8e-0d7a-4d53-9a1b-6f0f3c1f2a10",
    "user_id": "users",
}
HEADERS = {"lang": "py", "task": "user.created", "id": "8c1e…", "origin": "users"}


def test_frames_go_through_the_transports_write_and_fast_properties_are_py_amqps_bytes() -> None:
    plain = frames(amqp.Message(b"[[{}],{},{}]", application_headers=HEADERS, **PROPERTIES))
    fast = frames(py_amqp.EventMessage(b"[[{}],{},{}]", headers=HEADERS, **PROPERTIES))

    assert plain and fast == plain


def test_coalesced_writes_hand_the_socket_one_write_of_the_same_bytes() -> None:
    message = amqp.Message(b"{}", application_headers=HEADERS, **PROPERTIES)

    assert frames(message, coalesced=True, times=3) == [b"".join(frames(message, times=3))]


def test_basic_publish_is_send_method_with_the_argument_layout_publish_unread_uses() -> None:
    sent: list[tuple[Any, ...]] = []
    channel = SimpleNamespace(
        connection=SimpleNamespace(
            client_properties={}, transport=SimpleNamespace(having_timeout=_no_timeout)
        ),
        send_method=lambda *args: sent.append(args),
    )
    message = amqp.Message(b"{}")
    amqp.Channel._basic_publish(channel, message, "events", "user.created", mandatory=True)  # type: ignore[attr-defined]
    py_amqp.publish_unread(channel, message, "events", "user.created")

    assert (
        sent[0]
        == sent[1]
        == (spec.Basic.Publish, "Bssbb", (0, "events", "user.created", True, False), message)
    )


def _no_timeout(timeout: float | None) -> Any:

    return contextlib.nullcontext()


# --- Celery ---------------------------------------------------------------------------------------
def test_the_worker_state_the_batcher_and_the_request_read_is_where_they_read_it() -> None:
    assert state.should_stop is None and state.should_terminate is None
    assert isinstance(state.revoked, LimitedSet) and isinstance(state.reserved_requests, WeakSet)
    assert celery.task_ready is state.task_ready
    assert not celery.shutting_down() and not celery.cold_shutdown()


def test_the_default_strategy_hands_requests_to_the_consumers_on_task_request() -> None:
    source = inspect.getsource(strategy.default)
    assert "handle = consumer.on_task_request" in source and "handle(req)" in source


def test_a_revoke_with_terminate_finds_the_job_through_the_requests_apply_result() -> None:
    source = inspect.getsource(celery_request.Request.terminate)
    assert "self._apply_result()" in source and "obj.terminate(signal)" in source


def test_the_django_fixup_reads_the_connection_reuse_setting() -> None:
    assert "self.app.conf.get('CELERY_DB_REUSE_MAX', None)" in inspect.getsource(django_fixup)


def test_a_failure_crosses_from_the_pool_process_as_a_pickleable_exception_info() -> None:
    class Unpickleable(Exception):
        def __init__(self, handle: object) -> None:
            super().__init__("held a socket")
            self.handle = handle

    with socket.socket() as sock:
        try:
            raise Unpickleable(sock)
        except Unpickleable as exc:
            info = celery.pickleable_failure(exc)

    back = pickle.loads(pickle.dumps(info))
    assert "Unpickleable" in back.traceback and "held a socket" in str(back.exception)


def test_a_decision_never_raised_crosses_too() -> None:
    # `outcomes` returns a Park or RetryLater it made (no traceback) for the main process to carry out
    info = celery.pickleable_failure(Park("retries-exhausted", "gave up after 5 attempts", "x.Error"))

    back = pickle.loads(pickle.dumps(info))
    assert isinstance(back.exception, Park) and back.exception.kind == "retries-exhausted"
    assert "gave up after 5 attempts" in back.traceback


# --- billiard -------------------------------------------------------------------------------------
def test_billiard_calls_the_timeout_callback_with_soft_and_timeout_keywords() -> None:
    calls: list[dict[str, Any]] = []
    result = ApplyResult({}, None, timeout_callback=lambda **kw: calls.append(kw), soft_timeout=5, timeout=9)

    result.handle_timeout(soft=True)
    result.handle_timeout(soft=False)

    assert calls == [{"soft": True, "timeout": 5}, {"soft": False, "timeout": 9}]


# --- kombu ----------------------------------------------------------------------------------------
def test_the_delay_layout_is_celerys_native_delayed_delivery() -> None:
    assert kombu.delay_exchange() == "celery_delayed_27"
    assert kombu.delay_routing_key(5, "orders.retry") == "0." * 25 + "1.0.1.orders.retry"


def test_bytes_waiting_reads_the_socket_under_the_consumers_connection() -> None:
    left, right = socket.socketpair()
    with left, right:
        consumer = SimpleNamespace(
            connection=SimpleNamespace(connection=SimpleNamespace(transport=SimpleNamespace(sock=left)))
        )
        assert not kombu.bytes_waiting(consumer)
        right.send(b"x")
        assert kombu.bytes_waiting(consumer)
    assert not kombu.bytes_waiting(SimpleNamespace(connection=None))


# --- prometheus-client ----------------------------------------------------------------------------
def test_the_value_class_is_chosen_again_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from prometheus_client import values

    monkeypatch.setattr(values, "ValueClass", values.MutexValue)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    prometheus.use_multiprocess_values()

    assert values.ValueClass is not values.MutexValue
    assert values.ValueClass.__name__ == "MmapedValue"
