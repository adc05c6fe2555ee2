"""Set the suite's queue policies on a broker, as its administrator:
`python -m common.ops.rabbitmq_policies [--vhost V] [--delivery-limit N]`.

A queue argument can only change by deleting the queue (and what it holds); a policy changes in
place, on a queue full of messages. So the broker's delivery limit of each `<svc>.events` is a
policy (`queue_policy`). It is a backstop, high on purpose: the broker counts
every return of a message (shutdowns, reconnects), so only what our own crash count
(`BUS_DELIVERY_LIMIT`, counted by the worker) cannot see should reach it, such as a message that
kills the worker's main process. Run this after deploying and whenever `BUS_BROKER_DELIVERY_LIMIT`
changes. A broker that loads definitions at boot gets the same policies from
`common.ops.rabbitmq_definitions`. Without them that backstop is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Any
from urllib.parse import unquote, urlsplit

from common.bus.amqp.topology import queue_name
from common.cli import SERVICES
from common.settings.env import amqp_url

DEFAULT_DELIVERY_LIMIT = 50  # returns and crashes; our crash count parks a poison message at 5
POLICY_PRIORITY = 10  # RabbitMQ applies one policy per queue, the highest priority's


def queue_policy(service: str, *, delivery_limit: int) -> dict[str, Any]:
    """In the shape of a definitions file's `policies` entries."""
    return {
        "name": queue_name(service),
        "pattern": f"^{re.escape(queue_name(service))}$",
        "apply-to": "queues",
        "priority": POLICY_PRIORITY,
        "definition": {"delivery-limit": delivery_limit},
    }


def policies(*, delivery_limit: int) -> list[dict[str, Any]]:
    return [queue_policy(service, delivery_limit=delivery_limit) for service in SERVICES]


def set_policy_commands(rabbitmqctl: list[str], vhost: str, *, delivery_limit: int) -> list[list[str]]:
    return [
        [
            *rabbitmqctl,
            "set_policy",
            "-p",
            vhost,
            "--apply-to",
            p["apply-to"],
            "--priority",
            str(p["priority"]),
            p["name"],
            p["pattern"],
            json.dumps(p["definition"]),
        ]
        for p in policies(delivery_limit=delivery_limit)
    ]


def vhost_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path[1:]) or "/"


def _delivery_limit(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {raw!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 1000, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--vhost", help="the suite's vhost (default: $AMQP_URL's, else /)")
    parser.add_argument(
        "--delivery-limit",
        type=_delivery_limit,
        default=None,
        help=f"redeliveries before RabbitMQ parks a message (default: $BUS_BROKER_DELIVERY_LIMIT "
        f"or {DEFAULT_DELIVERY_LIMIT})",
    )
    parser.add_argument("--rabbitmqctl", default="rabbitmqctl", help="the rabbitmqctl to run")
    parser.add_argument("--node", help="rabbitmqctl's -n (default: its own default node)")
    parser.add_argument("--print", action="store_true", help="print the commands instead of running them")
    args = parser.parse_args(argv)
    limit = args.delivery_limit
    if limit is None:
        raw = os.environ.get("BUS_BROKER_DELIVERY_LIMIT", str(DEFAULT_DELIVERY_LIMIT))
        try:
            limit = _delivery_limit(raw)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"BUS_BROKER_DELIVERY_LIMIT {exc}")
    vhost = args.vhost or vhost_of(amqp_url())
    exe = shutil.which(args.rabbitmqctl)
    ctl = [exe or args.rabbitmqctl, *(["-n", args.node] if args.node else []), "-q"]
    commands = set_policy_commands(ctl, vhost, delivery_limit=limit)
    if args.print:
        for command in commands:
            print(shlex.join(command))
        return 0
    if exe is None:
        print(
            f"{args.rabbitmqctl} not found: run this where the broker's CLI is, or set the policies "
            "another way (--print shows them; the management UI's Admin > Policies)",
            file=sys.stderr,
        )
        return 2
    for command, policy in zip(commands, policies(delivery_limit=limit), strict=True):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)  # noqa: S603 - our own argv
        if done.returncode != 0:
            print(f"could not set policy {policy['name']}: {done.stderr.strip()}", file=sys.stderr)
            return 1
    names = ", ".join(p["name"] for p in policies(delivery_limit=limit))
    print(f"vhost {vhost}: delivery limit {limit} set by policy on {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
