"""`manage.py <svc> contracts check | write | export | catalogue` (any service: the catalogue is global).

- check: regenerate the JSON Schemas and the AsyncAPI document and compare with docs/; fail on a
  breaking change to a released version (naming the field) and on drift.
- write (or export): regenerate docs/ (refusing breaking changes to released versions).
- catalogue: print type, versions, producer, consumers and queues.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.contracts import catalogue


class Command(BaseCommand):
    help = "Check, write or print the event catalogue (JSON Schemas, AsyncAPI)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("check", "write", "export", "catalogue"))
        parser.add_argument(
            "--docs", type=Path, default=catalogue.DOCS_DIR, help="where the committed copies live"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        found = catalogue.consumers()
        if options["action"] == "catalogue":
            self.stdout.write(catalogue.table(found))
        elif options["action"] in ("write", "export"):
            try:
                written = catalogue.write(found, options["docs"])
            except ValueError as exc:
                raise CommandError(f"refusing to write:\n{exc}") from None
            self.stdout.write("\n".join(f"wrote docs/{p}" for p in written) or "docs/ is up to date")
        else:
            if not options["docs"].is_dir():
                raise CommandError(f"--docs {options['docs']} is not a directory")
            problems = catalogue.check(found, options["docs"])
            if problems:
                raise CommandError("contract check failed:\n  " + "\n  ".join(problems))
            self.stdout.write("contracts: schemas and AsyncAPI match the code; no breaking change")
