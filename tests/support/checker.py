"""A history checker for the suite, after Jepsen's total-queue: what clients were told was committed
must take effect exactly once, nothing may take effect that nobody asked for, and no state may be
older than one already applied.

Clients record what the APIs acknowledged (`History`); `check` reads every service's state and the
mail that was sent, for the history's own users only (several histories may share a suite), and
counts per kind of effect what is expected, applied, lost (acknowledged, never applied), duplicated
(applied twice), unexpected (applied, never acknowledged) and out of order (an older state after a
newer one). It is only meaningful once the run has drained: `converge` polls it until nothing is
missing, or a deadline.
"""

from __future__ import annotations

import email
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import TYPE_CHECKING, Any

from tests.support.polling import Timeout, wait_for

if TYPE_CHECKING:
    from tests.support.suite import Suite


@dataclass
class History:
    """What the APIs acknowledged (2xx), recorded by the clients as they go; thread-safe."""

    users: dict[str, str] = field(default_factory=dict)  # user id -> email at sign-up
    emails: dict[str, list[str]] = field(default_factory=dict)  # user id -> every address, in order
    placed: dict[str, str] = field(default_factory=dict)  # order id -> customer id
    cancelled: set[str] = field(default_factory=set)  # order ids
    deleted: dict[str, datetime] = field(default_factory=dict)  # user id -> when its deletion was acked
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def signed_up(self, user_id: str, email_address: str) -> None:
        with self._lock:
            self.users[user_id] = email_address
            self.emails[user_id] = [email_address]

    def changed_email(self, user_id: str, email_address: str) -> None:
        with self._lock:
            self.emails[user_id].append(email_address)

    def ordered(self, order_id: str, user_id: str) -> None:
        with self._lock:
            self.placed[order_id] = user_id

    def cancelled_order(self, order_id: str) -> None:
        with self._lock:
            self.cancelled.add(order_id)

    def deleted_user(self, user_id: str) -> None:
        with self._lock:
            self.deleted[user_id] = datetime.now(UTC)

    def snapshot(self) -> History:
        with self._lock:
            return History(
                dict(self.users),
                {u: list(e) for u, e in self.emails.items()},
                dict(self.placed),
                set(self.cancelled),
                dict(self.deleted),
            )

    def expected(self) -> dict[str, Counter[str]]:
        """Every effect the acknowledged operations must have, once each, by kind."""
        h = self.snapshot()
        user_ids, order_ids = list(h.users), list(h.placed)  # (a Counter of a dict counts its values)
        # a deletion cancels the orders its user still had open, without a notification
        closed = h.cancelled | {o for o, u in h.placed.items() if u in h.deleted}
        # what a deleted user is notified of depends on which event arrives first: not expected
        kept = [u for u in user_ids if u not in h.deleted]
        kept_orders = [o for o, u in h.placed.items() if u not in h.deleted]
        kept_cancelled = [o for o in h.cancelled if h.placed.get(o) not in h.deleted]
        return {
            "customer replica (orders)": Counter(user_ids),
            "contact replica (notifications)": Counter(user_ids),
            "current address (notifications)": Counter(kept),
            "tombstone (orders, notifications)": Counter(list(h.deleted)),
            "welcome notification": Counter(kept),
            "order_placed notification": Counter(kept_orders),
            "order_cancelled notification": Counter(kept_cancelled),
            "order (orders)": Counter(order_ids),
            "order cancelled (orders)": Counter(closed),
            "welcome mail": Counter(kept),  # to whichever address was current then
            "order_placed mail": Counter(kept_orders),
            "order_cancelled mail": Counter(kept_cancelled),
        }

    def optional(self) -> set[str]:
        """Effects that may or may not happen: those for users who were deleted (but never after
        the deletion, which the checker counts as unexpected)."""
        h = self.snapshot()
        gone = set(h.deleted)
        return (
            gone
            | {o for o, u in h.placed.items() if u in gone}
            | {a for u in gone for a in h.emails.get(u, [])}
        )

    @property
    def operations(self) -> int:
        with self._lock:
            changes = sum(len(e) - 1 for e in self.emails.values())
            return len(self.users) + changes + len(self.placed) + len(self.cancelled) + len(self.deleted)


@dataclass(frozen=True)
class Row:
    kind: str
    expected: int
    applied: int
    lost: tuple[str, ...]
    duplicated: tuple[str, ...]
    unexpected: tuple[str, ...]
    out_of_order: tuple[str, ...] = ()


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
            "out of order": sum(len(r.out_of_order) for r in rows),
        }

    def clean(self) -> bool:
        return not any(self.counts().values())

    @property
    def missing(self) -> int:
        return sum(len(r.lost) for r in self.rows)

    @property
    def applied(self) -> int:
        return sum(r.applied for r in self.rows)

    def __str__(self) -> str:
        lines = [f"{'effect':<36}{'expected':>9}{'applied':>9}{'lost':>6}{'dup':>6}{'unexp':>7}{'order':>7}"]
        for r in self.rows:
            lines.append(
                f"{r.kind:<36}{r.expected:>9}{r.applied:>9}{len(r.lost):>6}{len(r.duplicated):>6}"
                f"{len(r.unexpected):>7}{len(r.out_of_order):>7}"
            )
            for label, keys in (
                ("lost", r.lost),
                ("duplicated", r.duplicated),
                ("unexpected", r.unexpected),
                ("out of order", r.out_of_order),
            ):
                if keys:
                    lines.append(f"    {label}: {', '.join(keys[:5])}{' …' if len(keys) > 5 else ''}")
        return "\n".join(lines)


def mails(suite: Suite) -> list[Message]:
    """Every message the notifications service sent, parsed."""
    return [email.message_from_string(text) for text in suite.mails()]


def _order_in(subject: str, verb: str) -> str | None:
    parts = subject.split()
    if len(parts) == 3 and parts[0] == "Order" and parts[2] == verb:
        return parts[1]
    return None


def _id(value: Any) -> str:
    return str(uuid.UUID(str(value)))


def _when(value: Any) -> datetime:
    """A timestamp as PostgreSQL (datetime) or SQLite (text, UTC) returns it."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def observed(suite: Suite, history: History) -> tuple[dict[str, Counter[str]], dict[str, list[str]]]:
    """Every effect as the services' databases and the sent mail show it, by kind, for the history's
    users; and what is out of order, by kind."""
    h = history.snapshot()
    mine = set(h.users)
    seen: dict[str, Counter[str]] = {}
    wrong: dict[str, list[str]] = {}

    customers = [(_id(c), d) for c, d in suite.sql("orders", "SELECT id, deleted_at FROM orders_customer")]
    customers = [(c, d) for c, d in customers if c in mine]
    seen["customer replica (orders)"] = Counter(c for c, _ in customers)
    contacts = [
        (_id(u), e, d)
        for u, e, d in suite.sql(
            "notifications", "SELECT user_id, email, deleted_at FROM notifications_contact"
        )
    ]
    contacts = [(u, e, d) for u, e, d in contacts if u in mine]
    seen["contact replica (notifications)"] = Counter(u for u, _, _ in contacts)
    current = {u: e for u, e, _ in contacts}
    seen["current address (notifications)"] = Counter(
        u for u, e, d in contacts if d is None and u not in h.deleted and e == h.emails[u][-1]
    )
    # an older address than the newest acknowledged one: a state older than one already applied
    wrong["current address (notifications)"] = sorted(
        u for u in mine - set(h.deleted) if u in current and current[u] in h.emails[u][:-1]
    )
    tombstoned_orders = {c for c, d in customers if d is not None}
    seen["tombstone (orders, notifications)"] = Counter(
        u for u, _, d in contacts if d is not None and u in tombstoned_orders
    )

    rows = suite.sql(
        "notifications", "SELECT kind, user_id, subject, created_at, sent_at FROM notifications_notification"
    )
    notes = [
        (k, _id(u), s, _when(c), None if t is None else _when(t)) for k, u, s, c, t in rows if _id(u) in mine
    ]
    seen["welcome notification"] = Counter(u for k, u, _, _, _ in notes if k == "welcome")
    for kind, verb in (("order_placed", "placed"), ("order_cancelled", "cancelled")):
        seen[f"{kind} notification"] = Counter(
            o for k, _, s, _, _ in notes if k == kind and (o := _order_in(s, verb)) is not None
        )
    # nothing mailed to a user once notifications knew of the deletion (its tombstone); one recorded
    # by a handler that read the contact before the deletion committed is withheld, never sent
    tombstones = {u: _when(d) for u, _, d in contacts if d is not None}
    late = [
        f"{k} to {u}"
        for k, u, _, _, sent in notes
        if u in tombstones and sent is not None and sent > tombstones[u]
    ]
    # an order's cancellation notified before its placement
    placed_at = {o: c for k, _, s, c, _ in notes if k == "order_placed" and (o := _order_in(s, "placed"))}
    cancelled_at = {
        o: c for k, _, s, c, _ in notes if k == "order_cancelled" and (o := _order_in(s, "cancelled"))
    }
    wrong["order_cancelled notification"] = sorted(
        o for o, c in cancelled_at.items() if o in placed_at and c < placed_at[o]
    )

    orders = [
        (_id(o), _id(c), st)
        for o, c, st in suite.sql("orders", "SELECT id, customer_id, status FROM orders_order")
    ]
    orders = [(o, c, st) for o, c, st in orders if c in mine]
    seen["order (orders)"] = Counter(o for o, _, _ in orders)
    seen["order cancelled (orders)"] = Counter(o for o, _, st in orders if st == "cancelled")

    owner = {a: u for u, emails in h.emails.items() for a in emails}
    sent = [m for m in mails(suite) if str(m["To"]) in owner]
    seen["welcome mail"] = Counter(owner[str(m["To"])] for m in sent if m["Subject"] == "Welcome aboard")
    for kind, verb in (("order_placed", "placed"), ("order_cancelled", "cancelled")):
        seen[f"{kind} mail"] = Counter(
            o for m in sent if (o := _order_in(str(m["Subject"]), verb)) is not None
        )
    seen["_late"] = Counter(late)
    return seen, wrong


def check(suite: Suite, history: History) -> Report:
    expected = history.expected()
    optional = history.optional()
    seen, wrong = observed(suite, history)
    rows = []
    for kind, wanted in expected.items():
        got = seen[kind]
        unexpected = [k for k in got if k not in wanted and k not in optional]
        if kind == "welcome notification":
            unexpected += list(seen["_late"])  # notified after the deletion
        rows.append(
            Row(
                kind=kind,
                expected=sum(wanted.values()),
                applied=sum(min(got[k], 1) for k in wanted),
                lost=tuple(sorted(k for k in wanted if got[k] == 0)),
                duplicated=tuple(sorted(k for k in got if got[k] > 1)),
                unexpected=tuple(sorted(unexpected)),
                out_of_order=tuple(wrong.get(kind, ())),
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
