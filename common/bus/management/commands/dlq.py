"""`manage.py <svc> dlq list | show ID | replay (ID… | --all) | purge [ID…] [--noinput]`.

IDs are dead-letter ids as `list` prints them; any unique prefix will do. Each first collects what
waits in `<svc>.events.dlq` into the service's dead-letter table, then works on the table.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu.exceptions import OperationalError

from common.bus.amqp.connection import redacted
from common.bus.consume.deadletters import DeadLetterQueue
from common.bus.models import DeadLetter


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

    def handle(self, *args: Any, **options: Any) -> None:
        dlq = DeadLetterQueue(settings.AMQP_URL, settings.SERVICE_NAME)
        try:
            getattr(self, f"_{options['action']}")(dlq, options)
        except OperationalError as exc:
            raise CommandError(f"cannot reach RabbitMQ at {redacted(settings.AMQP_URL)}: {exc}") from None

    def _list(self, dlq: DeadLetterQueue, options: dict[str, Any]) -> None:
        if options["limit"] < 1:
            raise CommandError(f"--limit must be at least 1, got {options['limit']}")
        letters, total = dlq.page(limit=options["limit"])
        if not letters:
            self.stdout.write(f"{dlq.queue} is empty")
            return
        self.stdout.write(
            f"{'ID':<36}  {'EVENT':<20} {'EVENT ID':<36} {'ATTEMPTS':>8}  {'LAST FAILURE':<29}  REASON"
        )
        for d in letters:
            attempts = "" if d.attempts is None else str(d.attempts)
            reason = f"[{d.kind}] {d.reason}".replace("\n", " ")
            self.stdout.write(
                f"{d.id:<36}  {d.event_type or '-':<20} {d.event_id or '-':<36} {attempts:>8}  "
                f"{d.last_failure_at:<29}  {reason[:100]}"
            )
        if total > len(letters):
            self.stdout.write(
                f"{len(letters)} of {total} dead letter(s) in {dlq.queue} (--limit {total} lists them all)"
            )
        else:
            self.stdout.write(f"{total} dead letter(s) in {dlq.queue}")

    def _show(self, dlq: DeadLetterQueue, options: dict[str, Any]) -> None:
        letter = self._one(dlq, options["id"])
        rows = [
            ("id", letter.id),
            ("event", f"{letter.event_type} {letter.event_id}"),
            ("service", letter.service),
            ("kind", letter.kind),
            ("exception", letter.exception_type),
            ("reason", letter.reason),
            ("attempts", letter.attempts),
            ("first failure", letter.first_failure_at),
            ("last failure", letter.last_failure_at),
            ("routing key", letter.routing_key),
            ("content type", letter.content_type),
        ]
        for name, value in rows:
            self.stdout.write(f"{name + ':':<15} {value if value not in (None, '') else '-'}")
        if "x-death" in letter.headers:
            self.stdout.write(f"{'x-death:':<15} {letter.headers['x-death']}")
        if letter.traceback:
            self.stdout.write("traceback:\n" + letter.traceback)
        self.stdout.write("body:\n" + letter.body_text)

    def _replay(self, dlq: DeadLetterQueue, options: dict[str, Any]) -> None:
        if options["all"] == bool(options["ids"]):
            raise CommandError("give dead-letter IDs to replay, or --all (not both)")
        if options["ids"]:
            self._check_ids(dlq, options["ids"])
        replayed = dlq.replay(None if options["all"] else options["ids"])
        for d in replayed:
            self.stdout.write(f"replayed {d.id} ({d.event_type} {d.event_id})")
        self.stdout.write(f"{len(replayed)} dead letter(s) sent back to {settings.SERVICE_NAME}.events")

    def _purge(self, dlq: DeadLetterQueue, options: dict[str, Any]) -> None:
        ids = options["ids"] or None
        if ids:
            self._check_ids(dlq, ids)
        what = f"{len(ids)} dead letter(s)" if ids else f"every dead letter in {dlq.queue}"
        if not options["noinput"]:
            answer = input(f"Delete {what}? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("purge cancelled")
        self.stdout.write(f"purged {dlq.purge(ids)} dead letter(s)")

    def _one(self, dlq: DeadLetterQueue, ident: str) -> DeadLetter:
        found = dlq.find([ident])
        if not found:
            raise CommandError(f"no dead letter with id {ident!r} in {dlq.queue}")
        if len({d.id for d in found}) > 1:
            raise CommandError(f"{ident!r} matches several dead letters: give more of the id")
        return found[0]

    def _check_ids(self, dlq: DeadLetterQueue, ids: list[str]) -> None:
        for ident in ids:
            self._one(dlq, ident)
