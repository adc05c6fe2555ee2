"""`manage.py <svc> outbox status | prune [--hours N] | retry-failed [ID …]`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.bus import outbox


class Command(BaseCommand):
    help = "Inspect and tend this service's outbox."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="status|prune|retry-failed")
        sub.add_parser("status", help="pending and failed counts, age of the oldest pending row")
        prune = sub.add_parser("prune", help="delete published rows older than the retention")
        prune.add_argument("--hours", type=int, default=settings.BUS_OUTBOX_RETENTION_HOURS)
        retry = sub.add_parser("retry-failed", help="put failed rows back in line (all, or IDs)")
        retry.add_argument("ids", nargs="*", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "status":
            state = outbox.state()
            self.stdout.write(
                f"pending {state.pending}  failed {state.failed}  "
                f"oldest pending {state.oldest_pending_age_seconds:.1f}s"
            )
        elif action == "prune":
            if options["hours"] < 1:
                raise CommandError(f"--hours must be at least 1, got {options['hours']}")
            removed = outbox.prune(older_than=timedelta(hours=options["hours"]))
            self.stdout.write(f"pruned {removed} published row(s)")
        else:
            count = outbox.retry_failed(options["ids"] or None)
            self.stdout.write(f"{count} failed row(s) back to pending")
