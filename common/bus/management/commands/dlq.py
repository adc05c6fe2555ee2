"""`manage.py <svc> dlq list | show ID | replay (ID… | --all) | purge [ID…] [--noinput]`.

IDs as `list` prints them, or any unique prefix. Each first collects what waits in `<svc>.events.dlq`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu.exceptions import OperationalError

from common.bus.amqp.connection import redacted
from common.bus.models import DeadLetter
from common.bus.ops.deadletters import DeadLetterQueue

ROW = "{:<36}  {:<20} {:<36} {:>8}  {:<29}  {}"  # a `list` line


def printable(text: str) -> str:
    """A dead letter's text comes from whoever published the message: escape control characters
    (a terminal runs ESC sequences: retitle the window, rewrite the screen, hide lines), keeping
    line breaks and tabs."""
    return "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in text)


class Command(BaseCommand):
    help = "Inspect, replay and purge this service's dead-letter queue."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="list|show|replay|purge")
        listing = sub.add_parser("list", help="one line per dead letter")
        listing.add_argument("--limit", type=int, default=200)
        show = sub.add_parser("show", help="everything about one dead letter")
        show.add_argument("id")
        replay = sub.add_parser("replay", help="send dead letters back to this service's queue")
        replay.add_argument("ids", nargs="*")
        replay.add_argument("--all", action="store_true", help="replay every dead letter")
        purge = sub.add_parser("purge", help="delete dead letters (all, or the given IDs)")
        purge.add_argument("ids", nargs="*")
        purge.add_argument("--noinput", "--no-input", action="store_true", help="do not ask")

    def _say(self, text: str) -> None:
        self.stdout.write(printable(text))

    def handle(self, *args: Any, **options: Any) -> None:
        self.dlq = DeadLetterQueue(settings.AMQP_URL, settings.SERVICE_NAME)
        try:
            getattr(self, f"_{options['action']}")(options)
        except OperationalError as exc:
            raise CommandError(f"cannot reach RabbitMQ at {redacted(settings.AMQP_URL)}: {exc}") from None

    def _list(self, options: dict[str, Any]) -> None:
        if options["limit"] < 1:
            raise CommandError(f"--limit must be at least 1, got {options['limit']}")
        letters, total = self.dlq.page(limit=options["limit"])
        if not letters:
            self._say(f"{self.dlq.queue} is empty")
            return
        self._say(ROW.format("ID", "EVENT", "EVENT ID", "ATTEMPTS", "LAST FAILURE", "REASON"))
        for d in letters:
            attempts = "" if d.attempts is None else str(d.attempts)
            reason = f"[{d.kind}] {d.reason}".replace("\n", " ")[:100]
            row = (d.id, d.event_type or "-", d.event_id or "-", attempts, d.last_failure_at, reason)
            self._say(ROW.format(*row))
        footer = f"{total} dead letter(s) in {self.dlq.queue}"
        if total > len(letters):
            footer = f"{len(letters)} of {footer} (--limit {total} lists them all)"
        self._say(footer)

    def _show(self, options: dict[str, Any]) -> None:
        d = self._one(options["id"])
        shown = {
            "id": d.id,
            "event": f"{d.event_type} {d.event_id}",
            "service": d.service,
            "kind": d.kind,
            "exception": d.exception_type,
            "reason": d.reason,
            "attempts": d.attempts,
            "first failure": d.first_failure_at,
            "last failure": d.last_failure_at,
            "routing key": d.routing_key,
            "content type": d.content_type,
        }
        if "x-death" in d.headers:
            shown["x-death"] = d.headers["x-death"]
        for name, value in shown.items():
            self._say(f"{name + ':':<15} {value if value not in (None, '') else '-'}")
        if d.traceback:
            self._say("traceback:\n" + d.traceback)
        self._say("body:\n" + d.body_text)

    def _replay(self, options: dict[str, Any]) -> None:
        if options["all"] == bool(options["ids"]):
            raise CommandError("give dead-letter IDs to replay, or --all (not both)")
        for ident in options["ids"]:
            self._one(ident)
        replayed = self.dlq.replay(None if options["all"] else options["ids"])
        for d in replayed:
            self._say(f"replayed {d.id} ({d.event_type} {d.event_id})")
        self._say(f"{len(replayed)} dead letter(s) sent back to {settings.SERVICE_NAME}.events")

    def _purge(self, options: dict[str, Any]) -> None:
        ids = options["ids"] or None
        for ident in ids or ():
            self._one(ident)
        what = f"{len(ids)} dead letter(s)" if ids else f"every dead letter in {self.dlq.queue}"
        if not options["noinput"]:
            answer = input(f"Delete {what}? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("purge cancelled")
        self._say(f"purged {self.dlq.purge(ids)} dead letter(s)")

    def _one(self, ident: str) -> DeadLetter:
        found = list(self.dlq.chosen([ident]))
        if len(found) != 1:
            many = f"{ident!r} matches several dead letters: give more of the id"
            raise CommandError(many if found else f"no dead letter with id {ident!r} in {self.dlq.queue}")
        return found[0]
