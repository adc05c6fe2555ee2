"""`make test`: every test group against the real RabbitMQ and PostgreSQL.

Each service is its own Django project, so the Django tests run as one pytest session per service;
the end-to-end tests start real processes and need no Django in the test process. Every group gets a
RabbitMQ vhost of its own and databases with this run's unique prefix, all removed at the end, so
concurrent runs on one machine never see each other.

    python -m tests.run                  # all groups
    python -m tests.run orders -- -k cancel   # one group, extra pytest arguments after --
    python -m tests.run sqlite -- tests/e2e/test_story.py   # paths among them: only those
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from common.auth.keygen import ensure_pair
from common.bus.amqp.connection import redacted, unreachable_reason
from tests.support import broker, databases

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("users", "orders", "notifications")


@dataclass(frozen=True)
class Group:
    name: str
    settings: str | None
    paths: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()  # what this group sets on top of the shipped defaults
    ignore: tuple[str, ...] = ()  # paths under `paths` that another group runs


ASYNCAPI_CHECKER = ROOT / "tests" / "support" / "asyncapi"
NOTHING_COLLECTED = 5  # pytest's exit code when no test was collected
# Static checks run first: a type error or a contract break fails fast, before any broker work.
STATIC_CHECKS: tuple[tuple[str, list[str]], ...] = (
    ("ruff lint", [sys.executable, "-m", "ruff", "check", "."]),
    ("ruff format", [sys.executable, "-m", "ruff", "format", "--check", "."]),
    ("mypy --strict", [sys.executable, "-m", "mypy", "."]),
    ("import boundaries", [str(Path(sys.executable).parent / "lint-imports")]),
    ("contracts: drift and compatibility", [sys.executable, "manage.py", "users", "contracts", "check"]),
    ("AsyncAPI document", ["node", str(ASYNCAPI_CHECKER / "check.mjs"), "docs/asyncapi.yaml"]),
)

GROUPS = (
    Group("common", "users_svc.settings", ("tests/unit/common", "tests/integration/common")),
    Group("users", "users_svc.settings", ("tests/unit/users", "tests/integration/users")),
    Group("orders", "orders_svc.settings", ("tests/unit/orders", "tests/integration/orders")),
    Group(
        "notifications",
        "notifications_svc.settings",
        ("tests/unit/notifications", "tests/integration/notifications"),
    ),
    Group("e2e", None, ("tests/e2e",)),
    Group("reliability", None, ("tests/reliability",), ignore=("tests/reliability/test_fault_matrix.py",)),
    Group("matrix", None, ("tests/reliability/test_fault_matrix.py",)),
    # The embedded default of `make run`: the processes of the Procfile on SQLite files.
    Group(
        "sqlite",
        None,
        (
            "tests/e2e/test_story.py",
            "tests/e2e/test_lifecycle.py",
            "tests/reliability/test_fault_matrix.py",
            "tests/sqlite",
        ),
        env=(("TEST_DATABASES", "sqlite"),),
    ),
)


def preflight() -> None:
    amqp_reason = unreachable_reason(broker.amqp_url(""))
    if amqp_reason:
        sys.exit(f"RabbitMQ is not reachable at {redacted(broker.BROKER_ROOT)}: {amqp_reason}")
    pg_reason = databases.reachable()
    if pg_reason:
        sys.exit(f"PostgreSQL is not reachable at {databases.server_url()}: {pg_reason}")


def run_static(base_env: dict[str, str]) -> int:
    """ruff, mypy, import-linter, the contract gate and the AsyncAPI parser; 0 when all pass."""
    print("\n=== static: lint, types, import boundaries, contracts", flush=True)
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        print(
            f"  {' and '.join(missing)} not found: the AsyncAPI parser needs Node.js and npm "
            "(bash tests/support/system-tools.sh installs them)"
        )
        return 1
    if not (ASYNCAPI_CHECKER / "node_modules").exists():
        install = ["npm", "ci", "--prefix", str(ASYNCAPI_CHECKER), "--no-audit", "--no-fund", "--silent"]
        if subprocess.call(install, cwd=ROOT) != 0:
            print("  could not install the AsyncAPI parser (npm ci)")
            return 1
    failed = 0
    for name, cmd in STATIC_CHECKS:
        result = subprocess.run(cmd, cwd=ROOT, env=base_env, capture_output=True, text=True)
        verdict = "ok" if result.returncode == 0 else "FAILED"
        print(f"  {name:<38} {verdict}", flush=True)
        if result.returncode != 0:
            print((result.stdout + result.stderr)[-6000:])
            failed += 1
    return failed


def run_group(
    group: Group, base_env: dict[str, str], prefix: str, extra: list[str], out: TextIO = sys.stdout
) -> int:
    missing = [p for p in group.paths if not (ROOT / p).exists()]
    if missing:
        print(f"\n=== {group.name}: missing {', '.join(missing)}", file=out, flush=True)
        return NOTHING_COLLECTED
    vhost = broker.create_vhost(f"test-{group.name}")
    env = dict(
        base_env,
        **dict(group.env),
        AMQP_URL=broker.amqp_url(vhost),
        TEST_RUN_PREFIX=f"{prefix}{group.name}_",
    )
    # paths or test ids among the extra arguments run instead of the whole group
    chosen = [a for a in extra if not a.startswith("-") and (ROOT / a.split("::")[0]).exists()]
    paths = [] if chosen else list(group.paths)
    for service in SERVICES:
        env.setdefault(f"{service.upper()}_DATABASE_URL", databases.database_url(f"{prefix}{service}"))
    cmd = [sys.executable, "-m", "pytest", *paths, *(f"--ignore={p}" for p in group.ignore), *extra]
    if group.settings:
        env["DJANGO_SETTINGS_MODULE"] = group.settings
    else:
        cmd += ["-p", "no:django"]
    print(
        f"\n=== {group.name}: {' '.join(paths or chosen)} | settings {group.settings or '-'} | "
        f"RabbitMQ vhost {vhost} | PostgreSQL {databases.server_url()}",
        file=out,
        flush=True,
    )
    try:
        return subprocess.call(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    finally:
        broker.delete_vhost(vhost)


# Groups that run beside others (own vhost, own databases or files, mostly waiting on their
# processes), to keep `make test` within its budget: started with the first group named, their
# output printed after the second. sqlite beside the one-service groups; the fault matrix beside e2e.
BESIDE: dict[str, tuple[str, str]] = {"sqlite": ("common", "notifications"), "matrix": ("e2e", "e2e")}


class Beside:
    def __init__(self, group: Group, thread: threading.Thread, log: Path, outcome: list[int]) -> None:
        self.group, self.thread, self.log, self.outcome = group, thread, log, outcome
        self.started = time.monotonic()

    def finish(self) -> tuple[str, int, float]:
        self.thread.join()
        print(self.log.read_text(errors="replace"), end="", flush=True)
        return self.group.name, self.outcome[0] if self.outcome else 1, time.monotonic() - self.started


def _start_beside(group: Group, base_env: dict[str, str], prefix: str, extra: list[str], tmp: Path) -> Beside:
    log = tmp / f"{group.name}.log"
    outcome: list[int] = []

    def run() -> None:
        with log.open("w") as out:
            outcome.append(run_group(group, base_env, prefix, extra, out))

    thread = threading.Thread(target=run, name=f"group-{group.name}")
    thread.start()
    return Beside(group, thread, log, outcome)


def test_environment(tmp: Path) -> dict[str, str]:
    """What every test process runs with: the test profile, its own keys and var directory; every
    bus setting is the shipped default."""
    ensure_pair(tmp / "jwt")
    return dict(
        os.environ,
        APP_ENV="test",
        SUITE_VAR_DIR=str(tmp / "var"),
        JWT_PRIVATE_KEY_FILE=str(tmp / "jwt" / "private.pem"),
        JWT_PUBLIC_KEY_FILE=str(tmp / "jwt" / "public.pem"),
        TEST_DATABASE_SERVER=databases.server_url(),
        PYTHONDONTWRITEBYTECODE="1",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("groups", nargs="*", help=f"groups: static, {', '.join(g.name for g in GROUPS)}")
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    args = parser.parse_args(argv)
    unknown = set(args.groups) - {g.name for g in GROUPS} - {"static"}
    if unknown:
        parser.error(f"unknown group(s) {', '.join(sorted(unknown))}")
    chosen = [g for g in GROUPS if not args.groups or g.name in args.groups]
    if args.groups == ["static"]:
        chosen = []
    if chosen:  # the static checks need neither a broker nor a database
        preflight()

    run_id = uuid.uuid4().hex[:8]
    prefix = f"suite_t{run_id}_"
    tmp = Path(tempfile.mkdtemp(prefix=f"suite-test-{run_id}-"))
    base_env = test_environment(tmp)
    results: list[tuple[str, int, float]] = []
    background: dict[str, Beside] = {}
    try:
        if not args.groups or "static" in args.groups:
            started = time.monotonic()
            results.append(("static", run_static(base_env), time.monotonic() - started))
        names = {g.name: g for g in chosen}
        beside = {n: spec for n, spec in BESIDE.items() if n in names and len(chosen) > 1}
        for group in chosen:
            if group.name in beside:
                continue
            for name, (start_with, _) in beside.items():
                if start_with == group.name:
                    background[name] = _start_beside(names[name], base_env, prefix, extra, tmp)
            started = time.monotonic()
            code = run_group(group, base_env, prefix, extra)
            results.append((group.name, code, time.monotonic() - started))
            for name, (_, finish_after) in beside.items():
                if finish_after == group.name and name in background:
                    results.append(background.pop(name).finish())
        for name in beside:  # those whose companions were not chosen, or are still running
            if name in background:
                results.append(background.pop(name).finish())
            elif not any(r[0] == name for r in results):
                started = time.monotonic()
                code = run_group(names[name], base_env, prefix, extra)
                results.append((name, code, time.monotonic() - started))
    finally:
        for left in background.values():
            left.thread.join()
        shutil.rmtree(tmp, ignore_errors=True)
        dropped = databases.drop_databases(prefix) + databases.drop_databases(f"test_{prefix}")
        if dropped:
            print(f"dropped leftover databases: {', '.join(dropped)}")
    print("\n=== summary")
    for name, code, seconds in results:
        print(f"  {name:<14} {verdict(code):<28} {seconds:6.1f}s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


def verdict(code: int) -> str:
    if code == 0:
        return "passed"
    if code == NOTHING_COLLECTED:  # a group that ran no test proved nothing
        return "FAILED (no tests ran)"
    return f"FAILED (exit {code})"


if __name__ == "__main__":
    sys.exit(main())
