"""`make run`'s supervisor: supervisord runs every Procfile entry and restarts one that dies, as
Kubernetes or systemd would, saying so in its log; the others keep serving. Ctrl-C stops them all.

    python -m common.ops.supervisor var/supervisord.conf    # write the configuration
    supervisord -n -c var/supervisord.conf                  # run it in the foreground

Each process's output is relayed to supervisord's, every line prefixed with the process's name, by a
PROCESS_LOG event listener (supervisor's documented extension point): `python -m
common.ops.supervisor --relay-logs`.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from honcho.environ import parse_procfile

PROJECT_DIR = Path(__file__).resolve().parents[2]
STOP_SECONDS = 25  # a warm shutdown: workers finish their jobs, relays their batch


def programs(procfile: Path = PROJECT_DIR / "Procfile") -> dict[str, str]:
    """The Procfile's entries, name → command, read as honcho reads them."""
    return dict(parse_procfile(procfile.read_text()).processes)


def _ini_value(text: str) -> str:
    return text.replace("%", "%%")  # supervisord expands %(name)s in values


def config(
    directory: Path,
    *,
    entries: Mapping[str, str] | None = None,
    environment: Mapping[str, Mapping[str, str]] | None = None,
    log_files: bool = False,
    python: str = sys.executable,
) -> str:
    """supervisord's configuration for `entries` (default: the Procfile's). With `log_files`, each
    process writes to `<directory>/<name>.log` instead of the relayed, prefixed output;
    `environment` adds variables per process."""
    entries = programs() if entries is None else entries
    lines = [
        "[supervisord]",
        "nodaemon = true",
        "logfile = /dev/null",  # in the foreground supervisord writes its activity log to stdout
        "logfile_maxbytes = 0",
        f"pidfile = {directory / 'supervisord.pid'}",
        f"childlogdir = {directory}",
        "",
        "[unix_http_server]",
        f"file = {directory / 'supervisor.sock'}",
        "chmod = 0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl = unix://{directory / 'supervisor.sock'}",
        "",
    ]
    for name, command in entries.items():
        lines += [
            f"[program:{name}]",
            # a shell expands the Procfile's ${PORT:-default}; exec hands the process its signals
            f"command = /bin/sh -c {_ini_value(shlex.quote('exec ' + command))}",
            f"directory = {PROJECT_DIR}",
            "autorestart = true",
            "startsecs = 2",
            "startretries = 100",
            f"stopwaitsecs = {STOP_SECONDS}",
            "stopasgroup = true",
            "killasgroup = true",
            "redirect_stderr = true",
        ]
        if log_files:
            lines += [f"stdout_logfile = {directory / (name + '.log')}", "stdout_logfile_maxbytes = 0"]
        else:
            lines += ["stdout_logfile = NONE", "stdout_events_enabled = true"]
        variables = (environment or {}).get(name, {})
        if variables:
            pairs = ",".join(f"{key}={_ini_value(_quoted(value))}" for key, value in variables.items())
            lines.append(f"environment = {pairs}")
        lines.append("")
    if not log_files:
        lines += [
            "[eventlistener:logs]",
            f"command = {python} -m common.ops.supervisor --relay-logs",
            f"directory = {PROJECT_DIR}",
            "events = PROCESS_LOG",
            "buffer_size = 10000",
            "stderr_logfile = /dev/stdout",
            "stderr_logfile_maxbytes = 0",
            "",
        ]
    return "\n".join(lines)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def relay_logs() -> None:
    """The PROCESS_LOG listener: each line a process wrote, prefixed with its name, on stderr
    (stdout is the listener's channel to supervisord)."""
    from supervisor import childutils

    width = max(map(len, programs()), default=10)
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        if headers.get("eventname", "").startswith("PROCESS_LOG"):
            header, _, data = payload.partition("\n")
            name = childutils.get_headers(header).get("processname", "?")
            for line in data.splitlines():
                sys.stderr.write(f"{name:<{width}} | {line}\n")
            sys.stderr.flush()
        childutils.listener.ok(sys.stdout)


def main(argv: list[str]) -> int:
    if argv[1:] == ["--relay-logs"]:
        relay_logs()
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    target = Path(argv[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(config(target.parent.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
