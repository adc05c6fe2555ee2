"""A history checker for the suite, after Jepsen's total-queue: what clients were told was committed
must take effect exactly once, and nothing may take effect that nobody asked for.

Clients record what the APIs acknowledged (`History`); `check` reads every service's state and the
mail that was sent, and counts per kind of effect what is expected, applied, lost (acknowledged,
never applied), duplicated (applied twice) and unexpected (applied, never acknowledged). It is only
meaningful once the run has drained: `converge` polls it until nothing is missing, or a deadline.
"""

from __future__ import annotations

import email
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email.message import Message
from typing import TYPE_CHECKING

from tests.support.polling import Timeout, wait_for

if TYPE_CHECKING:
    from tests.support.suite import Suite

MAIL_SEPARATOR = b"\n" + b"-" * 79 + b"\n"  # how Django's file backend ends each message


@dataclass
class History:
    """What the APIs acknowledged (2xx), recorded by the clients as they go; thread-safe."""

    users: dict[str, str] = field(default_factory=dict)  # user id -> email at sign-up
    placed: dict[str, str] = field(default_factory=dict)  # order id -> customer id
    cancelled: set[str] = field(default_factory=set)  # order ids
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def signed_up(self, user_id: str, email_address: str) -> None:
        with self._lock:
            self.users[user_id] = email_address

    def ordered(self, order_id: str, user_id: str) -> None:
        with self._lock:
            self.placed[order_id] = user_id

    def cancelled_order(self, order_id: str) -> None:
        with self._lock:
            self.cancelled.add(order_id)

    def expected(self) -> dict[str, Counter[str]]:
        """Every effect the acknowledged operations must have, once each, by kind."""
        with self._lock:
            users, placed, cancelled = dict(self.users), dict(self.placed), set(self.cancelled)
        user_ids, order_ids = list(users), list(placed)  # (a Counter of a dict would count its values)
        return {
            "customer replica (orders)": Counter(user_ids),
            "contact replica (notifications)": Counter(user_ids),
            "welcome notification": Counter(user_ids),
            "order_placed notification": Counter(order_ids),
            "order_cancelled notification": Counter(cancelled),
            "order (orders)": Counter(order_ids),
            "order cancelled (orders)": Counter(cancelled),
            "welcome mail": Counter(users.values()),
            "order_placed mail": Counter(order_ids),
            "order_cancelled mail": Counter(cancelled),
        }

    @property
    def operations(self) -> int:
        with self._lock:
            return len(self.users) + len(self.placed) + len(self.cancelled)


@dataclass(frozen=True)
class Row:
    kind: str
    expected: int
    applied: int
    lost: tuple[str, ...]
    duplicated: tuple[str, ...]
    unexpected: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    rows: tuple[Row, ...]
    seconds_to_converge: float = 0.0

    def counts(self, *, mail: bool = True) -> dict[str, int]:
        rows = [r for r in self.rows if mail or not r.kind.endswith(" mail")]
        return {
            "lost": sum(len(r.lost) for r in rows),
            "duplicated": sum(len(r.duplicated) for r in rows),
            "unexpected": sum(len(r.unexpected) for r in rows),
        }

    @property
    def missing(self) -> int:
        return sum(len(r.lost) for r in self.rows)

    def __str__(self) -> str:
        lines = [f"{'effect':<32}{'expected':>9}{'applied':>9}{'lost':>6}{'dup':>6}{'unexp':>7}"]
        for r in self.rows:
            lines.append(
                f"{r.kind:<32}{r.expected:>9}{r.applied:>9}{len(r.lost):>6}{len(r.duplicated):>6}"
                f"{len(r.unexpected):>7}"
            )
            for label, keys in (("lost", r.lost), ("duplicated", r.duplicated), ("unexpected", r.unexpected)):
                if keys:
                    lines.append(f"    {label}: {', '.join(keys[:5])}{' …' if len(keys) > 5 else ''}")
        return "\n".join(lines)


def mails(suite: Suite) -> list[Message]:
    """Every message the notifications workers sent (Django's file backend, one or more per file)."""
    if not suite.mail_dir.exists():
        return []
    found = []
    for path in sorted(suite.mail_dir.iterdir()):
        for chunk in path.read_bytes().split(MAIL_SEPARATOR):
            if chunk.strip():
                found.append(email.message_from_bytes(chunk))
    return found


def _order_in(subject: str, verb: str) -> str | None:
    parts = subject.split()
    if len(parts) == 3 and parts[0] == "Order" and parts[2] == verb:
        return parts[1]
    return None


def observed(suite: Suite) -> dict[str, Counter[str]]:
    """Every effect as the services' databases and the sent mail show it, by kind."""
    seen: dict[str, Counter[str]] = {}
    seen["customer replica (orders)"] = Counter(
        str(uuid.UUID(str(c))) for (c,) in suite.sql("orders", "SELECT id FROM orders_customer")
    )
    seen["contact replica (notifications)"] = Counter(
        str(uuid.UUID(str(c)))
        for (c,) in suite.sql("notifications", "SELECT user_id FROM notifications_contact")
    )
    rows = suite.sql("notifications", "SELECT kind, user_id, subject FROM notifications_notification")
    seen["welcome notification"] = Counter(str(uuid.UUID(str(u))) for k, u, _ in rows if k == "welcome")
    for kind, verb in (("order_placed", "placed"), ("order_cancelled", "cancelled")):
        seen[f"{kind} notification"] = Counter(
            o for k, _, s in rows if k == kind and (o := _order_in(s, verb)) is not None
        )
    seen["order (orders)"] = Counter(
        str(uuid.UUID(str(o))) for (o,) in suite.sql("orders", "SELECT id FROM orders_order")
    )
    seen["order cancelled (orders)"] = Counter(
        str(uuid.UUID(str(o)))
        for (o,) in suite.sql("orders", "SELECT id FROM orders_order WHERE status = 'cancelled'")
    )
    sent = mails(suite)
    seen["welcome mail"] = Counter(str(m["To"]) for m in sent if m["Subject"] == "Welcome aboard")
    for kind, verb in (("order_placed", "placed"), ("order_cancelled", "cancelled")):
        seen[f"{kind} mail"] = Counter(
            o for m in sent if (o := _order_in(str(m["Subject"]), verb)) is not None
        )
    return seen


def check(suite: Suite, history: History) -> Report:
    expected, seen = history.expected(), observed(suite)
    rows = []
    for kind, wanted in expected.items():
        got = seen[kind]
        rows.append(
            Row(
                kind=kind,
                expected=sum(wanted.values()),
                applied=sum(min(got[k], 1) for k in wanted),
                lost=tuple(sorted(k for k in wanted if got[k] == 0)),
                duplicated=tuple(sorted(k for k in got if got[k] > 1)),
                unexpected=tuple(sorted(k for k in got if k not in wanted)),
            )
        )
    return Report(tuple(rows))


def converge(suite: Suite, history: History, *, timeout: float = 120.0, since: float | None = None) -> Report:
    """Poll `check` until nothing acknowledged is missing; the report, with how long that took from
    `since` (a monotonic time, default now). Fails with the last report at the deadline."""
    started = time.monotonic() if since is None else since
    last: list[Report] = []

    def settled() -> bool:
        last[:] = [check(suite, history)]
        return last[0].missing == 0

    try:
        wait_for(settled, timeout=timeout, interval=0.25, what="every acknowledged effect")
    except Timeout as exc:
        raise Timeout(f"{exc}\n{last[0]}\n\n{suite.logs()}") from None
    return Report(last[0].rows, time.monotonic() - started)
