"""Write the `.env` that compose.yaml needs: every credential, fresh and random, for this machine.
`python -m common.ops.compose_env [PATH]` (default `.env`; an existing file is never overwritten).

compose.yaml has no default for any of them, so nothing committed is a usable secret, and each
service gets its own Django key and its own broker and database passwords.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from common.cli import SERVICES
from common.ops.rabbitmq_definitions import password_variables


def credentials() -> dict[str, str]:
    def password() -> str:
        return secrets.token_hex(24)  # hex: safe inside a URL as it is

    values = {f"{s.upper()}_DJANGO_SECRET_KEY": secrets.token_urlsafe(50) for s in SERVICES}
    values |= {variable: password() for variable in password_variables().values()}
    values["POSTGRES_PASSWORD"] = password()
    values |= {f"POSTGRES_{s.upper()}_PASSWORD": password() for s in SERVICES}
    values["FLOWER_BASIC_AUTH"] = f"admin:{password()}"
    values["GRAFANA_ADMIN_PASSWORD"] = password()
    values["METRICS_TOKEN"] = password()  # Prometheus's bearer token for the APIs' /metrics
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=Path(".env"))
    args = parser.parse_args(argv)
    if args.path.exists():
        print(f"{args.path} exists: left as it is (delete it to make new credentials)", file=sys.stderr)
        return 1
    text = "".join(f"{name}={value}\n" for name, value in credentials().items())
    args.path.touch(mode=0o600)
    args.path.write_text("# made by python -m common.ops.compose_env; keep it out of git\n" + text)
    print(f"wrote {args.path}: docker compose up -d")
    return 0


if __name__ == "__main__":
    sys.exit(main())
