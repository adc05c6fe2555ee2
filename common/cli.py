"""`python manage.py <service> <command> …`: one entry for every service, the service named first."""

from __future__ import annotations

import os
import sys

SERVICES = ("users", "orders", "notifications")
USAGE = (
    "usage: python manage.py <service> <django command> [options]\n"
    f"  <service> is one of: {', '.join(SERVICES)}\n"
    "  e.g. python manage.py users migrate | python manage.py orders runserver 8002"
)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if len(argv) >= 2 else 2
    service = argv[1]
    if service not in SERVICES:
        print(f"unknown service {service!r}\n{USAGE}", file=sys.stderr)
        return 2
    os.environ["DJANGO_SETTINGS_MODULE"] = f"{service}_svc.settings"
    os.environ["SUITE_SERVICE"] = service
    from django.core.management import execute_from_command_line

    execute_from_command_line([f"{argv[0]} {service}", *argv[2:]])
    return 0
