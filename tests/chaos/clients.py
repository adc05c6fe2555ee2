"""Customers driving the suite over HTTP while faults are injected: sign-ups, address changes,
orders, cancellations and account deletions. Each records in a `History` what the API acknowledged.

A request whose answer is lost (the API was killed, the connection reset) has an unknown outcome:
the client finds out what happened (it logs in, lists its orders, reads its account) before it
records or retries it, so the history holds exactly what was committed.
"""

from __future__ import annotations

import http.client
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.checker import History
from tests.support.polling import Timeout, wait_for
from tests.support.suite import Suite

ITEMS = [{"sku": "A", "quantity": 1, "unit_price": "1.50"}]
PATIENCE = 180.0  # seconds a client keeps trying one step before the run fails


class Unknown(Exception):
    """No answer: the request may or may not have taken effect."""


class GaveUp(AssertionError):
    pass


@dataclass
class Customer:
    suite: Suite
    history: History
    rng: random.Random
    email: str = field(default_factory=lambda: f"chaos-{uuid.uuid4().hex[:12]}@example.com")
    password: str = field(default_factory=lambda: "S3cure-" + uuid.uuid4().hex)
    user_id: str = ""
    token: str = ""
    orders: list[str] = field(default_factory=list)

    # --- plumbing ---------------------------------------------------------------------------------
    def _call(self, method: str, service: str, path: str, body: Any = None, token: str | None = None) -> Any:
        try:
            return self.suite.call(method, service, path, body, token=token)
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, cut off mid-answer
            raise Unknown(f"{type(exc).__name__}: {exc}") from exc  # (IncompleteRead): unknown outcome

    def _until(self, step: Callable[[], bool], what: str) -> None:
        """Run `step` until it says done; a lost answer or a 5xx is tried again (after checking)."""

        def attempt() -> bool:
            try:
                return step()
            except Unknown:
                return False

        try:
            wait_for(attempt, timeout=PATIENCE, interval=0.3, what=what)
        except Timeout as exc:
            raise GaveUp(f"{self.email}: {exc}") from None

    def _login(self) -> bool:
        status, body = self._call(
            "POST", "users", "/api/token/", {"email": self.email, "password": self.password}
        )
        if status == 200:
            self.token = str(body["access"])
            return True
        return False

    # --- steps ------------------------------------------------------------------------------------
    def sign_up(self) -> None:
        def step() -> bool:
            body = {"email": self.email, "password": self.password, "first_name": "C", "last_name": "H"}
            try:
                status, answer = self._call("POST", "users", "/api/users/", body)
            except Unknown:
                status, answer = 0, None
            if status == 201:
                self.user_id = str(answer["id"])
            elif status in (0, 400) or status >= 500:  # unknown, or it was made by a lost attempt
                if not self._login():
                    return False
                status, me = self._call("GET", "users", "/api/users/me/", token=self.token)
                if status != 200:
                    return False
                self.user_id = str(me["id"])
            else:
                return False
            self.history.signed_up(self.user_id, self.email)
            return self._login()

        self._until(step, "signing up")

    def change_email(self) -> None:
        new = f"moved-{uuid.uuid4().hex[:12]}@example.com"

        def step() -> bool:
            try:
                status, _ = self._call("PATCH", "users", "/api/users/me/", {"email": new}, token=self.token)
            except Unknown:
                status = 0
            if status != 200:
                status, me = self._call("GET", "users", "/api/users/me/", token=self.token)
                if status != 200 or me["email"] != new:
                    return False
            self.email = new
            self.history.changed_email(self.user_id, new)
            return True

        self._until(step, "changing the address")

    def place_order(self) -> None:
        """Not idempotent: after an unknown outcome (a lost answer, a 5xx) the customer finds out
        whether the order was made before it places one again."""
        uncertain = False

        def step() -> bool:
            nonlocal uncertain
            if uncertain:
                new = self._new_orders()
                if new is None:  # could not find out yet
                    return False
                if new:
                    for order_id in new:
                        self._ordered(order_id)
                    return True
                uncertain = False
            try:
                status, body = self._call(
                    "POST", "orders", "/api/orders/", {"items": ITEMS}, token=self.token
                )
            except Unknown:
                status, body = 0, None
            if status == 201:
                self._ordered(str(body["id"]))
                return True
            uncertain = status != 409  # 409: orders does not know the customer yet
            return False

        self._until(step, "placing an order")

    def _new_orders(self) -> list[str] | None:
        """The customer's orders it has not recorded, or None if it cannot tell right now."""
        try:
            status, body = self._call("GET", "orders", "/api/orders/", token=self.token)
        except Unknown:
            return None
        if status != 200:
            return None
        assert body["next"] is None, "more orders than one page: the customer could miss one"
        return [str(o["id"]) for o in body["results"] if str(o["id"]) not in self.orders]

    def _ordered(self, order_id: str) -> None:
        self.orders.append(order_id)
        self.history.ordered(order_id, self.user_id)

    def cancel(self, order_id: str) -> None:
        def step() -> bool:
            try:
                status, _ = self._call("POST", "orders", f"/api/orders/{order_id}/cancel/", token=self.token)
            except Unknown:
                status = 0
            if status != 200:
                status, order = self._call("GET", "orders", f"/api/orders/{order_id}/", token=self.token)
                if status != 200 or order["status"] != "cancelled":
                    return False
            self.history.cancelled_order(order_id)
            return True

        self._until(step, "cancelling an order")

    def delete_account(self) -> None:
        """Once every notification it is owed has arrived (so what it is owed is known), the
        customer leaves; orders still open are then cancelled by the suite."""
        owed = 1 + len(self.orders) + sum(1 for o in self.orders if o in self.history.snapshot().cancelled)

        def notified() -> bool:
            status, body = self._call("GET", "notifications", "/api/notifications/", token=self.token)
            return status == 200 and int(body["count"]) >= owed

        self._until(notified, "its notifications before leaving")

        def step() -> bool:
            try:
                status, _ = self._call("DELETE", "users", "/api/users/me/", token=self.token)
            except Unknown:
                status = 0
            if status not in (204, 401, 403):  # 401/403: a lost attempt already deleted it
                return False
            if status != 204 and self._login():
                return False  # it still exists: try again
            self.history.deleted_user(self.user_id)
            return True

        self._until(step, "deleting the account")

    def journey(self) -> None:
        self.sign_up()
        if self.rng.random() < 0.5:
            self.change_email()
        for _ in range(self.rng.choice((1, 2, 3))):
            self.place_order()
        self.cancel(self.orders[0])
        if self.rng.random() < 0.25:
            self.delete_account()


class Load:
    """`clients` customers, each going through journeys one after another until stopped."""

    def __init__(self, suite: Suite, history: History, *, clients: int = 6, seed: int = 1) -> None:
        self.suite, self.history, self.clients = suite, history, clients
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._seed = seed

    def start(self) -> Load:
        for n in range(self.clients):
            thread = threading.Thread(
                target=self._run, args=(random.Random(self._seed * 100 + n),), daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, rng: random.Random) -> None:
        try:
            while not self._stop.is_set():
                Customer(self.suite, self.history, rng).journey()
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self._errors.append(exc)

    def stop(self) -> None:
        """Let each customer finish its journey, then return; a client that gave up fails the run."""
        self._stop.set()
        for thread in self._threads:
            thread.join(PATIENCE * 2)
        if self._errors:
            raise self._errors[0]
