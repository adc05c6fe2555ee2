"""The Kubernetes manifests in deploy/k8s/ are valid and keep the suite's scale-out promises.

Offline and without Django: every YAML document is checked against the Kubernetes 1.30 API schemas
that kubernetes-validate bundles (strict: unknown fields fail, and so does a kind without a schema),
then read as data: replicas, probes, ports, shutdown, autoscaling, security, and that every command
names code that exists in this repository.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S_DIR = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"
NAMESPACE = "suite"
IMAGE = "suite:latest"
SERVICES = ("users", "orders", "notifications")
ROLES = ("api", "worker", "relay")
WORKER_HTTP_PORT = 9100
DEFAULT_TASK_TIME_LIMIT = 90  # BUS_TASK_TIME_LIMIT's default (common/settings/base.py)
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

Manifest = dict[str, Any]


def _load() -> list[tuple[str, Manifest]]:
    docs: list[tuple[str, Manifest]] = []
    for path in sorted([*K8S_DIR.glob("*.yaml"), *K8S_DIR.glob("*.yml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                assert isinstance(doc, dict), f"{path.name}: a document that is not a mapping"
                docs.append((path.name, doc))
    return docs


MANIFESTS = _load()


def _id(entry: tuple[str, Manifest]) -> str:
    file, doc = entry
    return f"{file}:{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def of_kind(kind: str) -> list[Manifest]:
    return [doc for _, doc in MANIFESTS if doc["kind"] == kind]


def find(kind: str, name: str) -> Manifest:
    found = [doc for doc in of_kind(kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def workloads() -> Iterator[Manifest]:
    for kind in ("Deployment", "StatefulSet", "Job"):
        yield from of_kind(kind)


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def project_containers() -> Iterator[tuple[Manifest, dict[str, Any]]]:
    for workload in workloads():
        for container in all_containers(pod_spec(workload)):
            if container["image"] == IMAGE:
                yield workload, container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert named, f"container {container['name']} has no port named {port!r}"
    return int(named[0])


def argv(container: dict[str, Any]) -> list[str]:
    return [str(arg) for arg in [*container.get("command", []), *container.get("args", [])]]


def module_exists(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def management_command_exists(service: str, name: str) -> bool:
    ours = [
        ROOT / "common" / "bus" / "management" / "commands" / f"{name}.py",
        *ROOT.glob(f"{service}_svc/**/management/commands/{name}.py"),
    ]
    if any(path.is_file() for path in ours):
        return True
    spec = importlib.util.find_spec("django")  # locates the package; imports nothing of it
    assert spec is not None and spec.submodule_search_locations
    django_dir = Path(next(iter(spec.submodule_search_locations)))
    return any(django_dir.glob(f"**/management/commands/{name}.py"))


def test_the_suite_is_all_there() -> None:
    names = {(doc["kind"], doc["metadata"]["name"]) for _, doc in MANIFESTS}
    expected = {("Namespace", NAMESPACE), ("StatefulSet", "rabbitmq"), ("Deployment", "flower")}
    for svc in SERVICES:
        expected |= {("Deployment", f"{svc}-{role}") for role in ROLES}
        expected |= {("Job", f"{svc}-migrate"), ("StatefulSet", f"postgres-{svc}")}
    assert expected <= names, f"missing: {sorted(expected - names)}"
    assert (K8S_DIR / "secrets.example.yaml").is_file()


@pytest.mark.parametrize("entry", MANIFESTS, ids=[_id(entry) for entry in MANIFESTS])
def test_every_document_is_valid_for_kubernetes(entry: tuple[str, Manifest]) -> None:
    _, doc = entry
    problem = None
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.utils.SchemaNotFoundError as exc:
        # kubernetes-validate only warns about these; a manifest nothing can check is a failure here.
        problem = f"no schema to validate against: {exc.message}"
    except kubernetes_validate.ValidationError as exc:
        problem = f"at {'.'.join(str(part) for part in exc.path) or '(root)'}: {exc.message}"
    if problem:  # outside the except blocks: the report is this line, not the whole schema
        pytest.fail(
            f"{_id(entry)} is not valid for Kubernetes {KUBERNETES_VERSION}: {problem}", pytrace=False
        )
    if doc["kind"] != "Namespace":
        assert doc["metadata"].get("namespace") == NAMESPACE, f"{_id(entry)} is not in {NAMESPACE}"


def test_apis_workers_and_relays_run_two_replicas_or_more() -> None:
    for svc in SERVICES:
        for role in ROLES:
            deployment = find("Deployment", f"{svc}-{role}")
            assert deployment["spec"]["replicas"] >= 2, f"{svc}-{role}"


def test_every_long_running_container_has_liveness_and_readiness_probes() -> None:
    for workload in [*of_kind("Deployment"), *of_kind("StatefulSet")]:  # Jobs run to completion
        for container in pod_spec(workload)["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            for kind in ("livenessProbe", "readinessProbe"):
                assert kind in container, f"{where} has no {kind}"
                if "httpGet" in container[kind]:
                    port_number(container, container[kind]["httpGet"]["port"])  # the port exists


def test_workers_and_relays_serve_health_and_metrics_on_9100() -> None:
    for svc in SERVICES:
        for role, variable in (("worker", "WORKER_HTTP_PORT"), ("relay", "RELAY_HTTP_PORT")):
            deployment = find("Deployment", f"{svc}-{role}")
            (container,) = pod_spec(deployment)["containers"]
            assert WORKER_HTTP_PORT in {p["containerPort"] for p in container["ports"]}
            assert env_of(container)[variable]["value"] == str(WORKER_HTTP_PORT)
            for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                probe = container[kind]["httpGet"]
                assert probe["path"] == path
                assert port_number(container, probe["port"]) == WORKER_HTTP_PORT
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(WORKER_HTTP_PORT)


def test_apis_probe_healthz_and_readyz_on_their_port_behind_a_service() -> None:
    for svc in SERVICES:
        (container,) = pod_spec(find("Deployment", f"{svc}-api"))["containers"]
        assert argv(container)[-2:] == ["--bind", "0.0.0.0:8000"]
        assert port_number(container, container["livenessProbe"]["httpGet"]["port"]) == 8000
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert port_number(container, container["readinessProbe"]["httpGet"]["port"]) == 8000
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        (port,) = find("Service", f"{svc}-api")["spec"]["ports"]
        assert port["port"] == 80 and port_number(container, port["targetPort"]) == 8000
        # a production API refuses to start without it: its /metrics is on this public port
        token = env_of(container)["METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert token == {"name": f"suite-{svc}", "key": "metrics-token"}


def test_workers_get_longer_to_stop_than_a_task_may_run() -> None:
    for svc in SERVICES:
        spec = pod_spec(find("Deployment", f"{svc}-worker"))
        (container,) = spec["containers"]
        limit = int(env_of(container).get("BUS_TASK_TIME_LIMIT", {}).get("value", DEFAULT_TASK_TIME_LIMIT))
        assert spec["terminationGracePeriodSeconds"] >= 120
        assert spec["terminationGracePeriodSeconds"] > limit


def test_workers_consume_their_own_queue_with_a_name_per_pod() -> None:
    for svc in SERVICES:
        (container,) = pod_spec(find("Deployment", f"{svc}-worker"))["containers"]
        assert argv(container) == [
            "celery", "-A", f"{svc}_svc", "worker", "-Q", f"{svc}.events", "-n", f"{svc}@$(POD_NAME)",
            "--without-mingle", "--without-gossip", "-l", "INFO",
        ]  # fmt: skip
        pod_name = env_of(container)["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert pod_name == "metadata.name"


def test_migrations_then_topology_run_once_per_service() -> None:
    for svc in SERVICES:
        job = find("Job", f"{svc}-migrate")
        steps = [argv(container) for container in all_containers(pod_spec(job))]
        assert steps == [
            ["python", "manage.py", svc, "migrate", "--noinput"],
            ["python", "manage.py", svc, "declare_topology"],
        ]


def test_each_worker_autoscales_on_its_queue_depth_and_each_api_on_cpu() -> None:
    hpas = of_kind("HorizontalPodAutoscaler")
    for svc in SERVICES:
        for role in ("worker", "api"):
            targets = [h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == f"{svc}-{role}"]
            assert len(targets) == 1, f"one autoscaler for {svc}-{role}"
            (hpa,) = targets
            assert hpa["apiVersion"] == "autoscaling/v2"
            assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
            kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
            if role == "api":
                assert kinds["Resource"]["resource"]["name"] == "cpu"
                continue
            external = kinds["External"]["external"]
            assert external["metric"]["name"] == "rabbitmq_queue_messages_ready"
            assert external["metric"]["selector"]["matchLabels"] == {"queue": f"{svc}.events"}
            assert external["target"]["type"] == "AverageValue"


def test_disruption_budgets_keep_one_of_each_and_two_of_three_brokers() -> None:
    budgets = {doc["metadata"]["name"]: doc["spec"] for doc in of_kind("PodDisruptionBudget")}
    for svc in SERVICES:
        for role in ROLES:
            budget = budgets[f"{svc}-{role}"]
            assert budget["minAvailable"] == 1
            assert budget["selector"]["matchLabels"] == {"app.kubernetes.io/name": f"{svc}-{role}"}
    assert budgets["rabbitmq"]["maxUnavailable"] == 1


def test_rabbitmq_is_a_three_node_cluster_with_kubernetes_peer_discovery() -> None:
    broker = find("StatefulSet", "rabbitmq")
    assert broker["spec"]["replicas"] == 3
    assert broker["spec"]["volumeClaimTemplates"]
    headless = find("Service", broker["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"]
    spec = pod_spec(broker)
    assert {c["image"] for c in all_containers(spec)} == {"rabbitmq:3.13-management"}
    config = find("ConfigMap", "rabbitmq-config")["data"]
    plugins = {"rabbitmq_management", "rabbitmq_prometheus", "rabbitmq_peer_discovery_k8s"}
    assert set(re.findall(r"\w+", config["enabled_plugins"])) == plugins
    assert "cluster_formation.peer_discovery_backend = rabbit_peer_discovery_k8s" in config["rabbitmq.conf"]
    assert "load_definitions = " in config["rabbitmq.conf"]
    assert "\nmax_message_size = 1048576\n" in config["rabbitmq.conf"]  # no 128 MiB messages
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["cookie"]["secret"]["secretName"] == "rabbitmq-erlang-cookie"
    # password hashes: a Secret, not a ConfigMap
    assert volumes["definitions"]["secret"]["secretName"] == "rabbitmq-definitions"
    # The peer discovery plugin may read the headless Service's endpoints, and nothing else.
    account = {"kind": "ServiceAccount", "name": spec["serviceAccountName"], "namespace": NAMESPACE}
    (binding,) = [b for b in of_kind("RoleBinding") if account in b["subjects"]]
    role = find("Role", binding["roleRef"]["name"])
    assert role["rules"] == [{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get"]}]


def test_each_service_has_its_own_postgresql() -> None:
    for svc in SERVICES:
        database = find("StatefulSet", f"postgres-{svc}")
        assert database["spec"]["volumeClaimTemplates"]
        (container,) = pod_spec(database)["containers"]
        assert container["image"] == "postgres:15"
        env = env_of(container)
        assert env["POSTGRES_DB"]["value"] == svc and env["POSTGRES_USER"]["value"] == svc
        assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"postgres-{svc}"
        assert find("Service", database["spec"]["serviceName"])["metadata"]["name"] == f"postgres-{svc}"


def test_service_pods_get_their_own_settings_and_secrets_only() -> None:
    for workload, container in project_containers():
        name = workload["metadata"]["name"]
        svc = name.split("-")[0]
        if svc not in SERVICES:
            continue
        env = env_of(container)
        assert env["APP_ENV"]["value"] == "production" and env["LOG_FORMAT"]["value"] == "json"
        assert env["DJANGO_ALLOWED_HOSTS"]["value"] and env["WORKER_CONCURRENCY"]["value"]
        for variable, key in (
            ("DJANGO_SECRET_KEY", "django-secret-key"),
            ("AMQP_URL", "amqp-url"),
            (f"{svc.upper()}_DATABASE_URL", "database-url"),
        ):
            assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": f"suite-{svc}", "key": key}
        assert env["JWT_PUBLIC_KEY_FILE"]["value"] == "/run/secrets/jwt/public.pem"
        signer = name == "users-api"
        assert ("JWT_PRIVATE_KEY_FILE" in env) == signer, f"{name}: only the users API signs tokens"
        secrets = {
            ref["valueFrom"]["secretKeyRef"]["name"]
            for ref in env.values()
            if "secretKeyRef" in ref.get("valueFrom", {})
        }
        for volume in pod_spec(workload)["volumes"]:
            secrets |= {volume["secret"]["secretName"]} if "secret" in volume else set()
            secrets |= {s["secret"]["name"] for s in volume.get("projected", {}).get("sources", [])}
        allowed = {f"suite-{svc}", "jwt-public"} | ({"jwt-private"} if signer else set())
        assert secrets == allowed, f"{name} reads {sorted(secrets)}"


def test_commands_name_code_that_exists() -> None:
    for workload, container in project_containers():
        where = f"{workload['metadata']['name']}/{container['name']}"
        args = argv(container)
        defined = [item["name"] for item in container.get("env", [])]
        for reference in VAR_REF.findall(" ".join(args)):
            assert reference in defined, f"{where}: $({reference}) is not in the container's env"
        if args[0] == "gunicorn":
            assert module_exists(args[1]), f"{where}: no module {args[1]}"
            config = args[args.index("--config") + 1]
            assert config.startswith("python:") and module_exists(config.removeprefix("python:")), where
        elif args[0] == "celery":
            app = args[args.index("-A") + 1]
            assert module_exists(app), f"{where}: no module {app}"
            if (ROOT.joinpath(*app.split(".")) / "__init__.py").is_file():
                assert module_exists(f"{app}.celery"), f"{where}: no Celery app in {app}"
        elif args[:2] == ["python", "manage.py"]:
            service, command = args[2], args[3]
            assert service in SERVICES and (ROOT / "manage.py").is_file(), where
            assert management_command_exists(service, command), f"{where}: no command {command}"
        else:
            pytest.fail(f"{where}: unknown command {args}")


def test_env_references_point_at_earlier_variables() -> None:
    for workload in workloads():
        for container in all_containers(pod_spec(workload)):
            seen: set[str] = set()
            for item in container.get("env", []):
                for reference in VAR_REF.findall(str(item.get("value", ""))):
                    assert reference in seen, f"{workload['metadata']['name']}: $({reference}) undefined"
                seen.add(item["name"])


def test_every_pod_runs_locked_down_with_resources() -> None:
    for workload in workloads():
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in all_containers(spec):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{where} {bound}"
            if container["image"] == IMAGE:
                assert spec["securityContext"]["runAsUser"] == 10001, where
                assert security["readOnlyRootFilesystem"] is True, where
                scratch = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                assert mounts["/tmp"] in scratch and mounts["/app/var"] in scratch, where


def test_flower_has_auth_and_stays_inside_the_cluster() -> None:
    flower = find("Deployment", "flower")
    assert flower["spec"]["replicas"] == 1
    (container,) = pod_spec(flower)["containers"]
    flower_command = ["celery", "-A", "common.monitor", "flower", "--address=0.0.0.0", "--port=5555"]
    assert argv(container) == flower_command
    assert env_of(container)["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]["name"] == "flower"
    assert not of_kind("Ingress"), "nothing here is exposed publicly"
    for service in of_kind("Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]


def test_references_to_secrets_configmaps_and_ports_resolve() -> None:
    example = [doc for file, doc in MANIFESTS if file == "secrets.example.yaml"]
    secrets = {doc["metadata"]["name"]: set(doc.get("stringData", {})) for doc in example}
    configmaps = {doc["metadata"]["name"] for doc in of_kind("ConfigMap")}
    for workload in workloads():
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, name
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, name
            for source in volume.get("projected", {}).get("sources", []):
                assert source["secret"]["name"] in secrets, name
        for container in all_containers(spec):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets.get(ref["name"], set()), f"{name}: {ref}"
    pods = [(w["spec"]["template"]["metadata"]["labels"], pod_spec(w)) for w in workloads()]
    for service in of_kind("Service"):
        selector = service["spec"]["selector"]
        matching = [spec for labels, spec in pods if selector.items() <= labels.items()]
        assert matching, f"Service {service['metadata']['name']} selects no pod"
        for port in service["spec"]["ports"]:
            for spec in matching:
                port_number(spec["containers"][0], port.get("targetPort", port["port"]))


def test_example_secrets_hold_placeholders_only() -> None:
    for file, doc in MANIFESTS:
        if doc["kind"] != "Secret":
            continue
        assert file == "secrets.example.yaml", f"{file}: Secrets belong in secrets.example.yaml"
        assert "data" not in doc, "stringData only: base64 would hide what a value is"
        for key, value in doc["stringData"].items():
            assert "CHANGE-ME" in value, f"{doc['metadata']['name']}.{key} is not a placeholder"


# --- NetworkPolicy: evaluated as a network plugin would, for ingress ------------------------------

Peer = tuple[str, dict[str, str]]  # ("pod", its labels) in the namespace, or ("namespace", its labels)
OUTSIDE: Peer = ("namespace", {"kubernetes.io/metadata.name": "elsewhere"})
SCRAPER: Peer = ("namespace", {"suite/metrics-scraper": "true"})


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not ok:
            return False
    return True


def pod_labels(name: str) -> dict[str, str]:
    (workload,) = [w for w in workloads() if w["metadata"]["name"] == name]
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def admitted(source: Peer, target: str, port: int) -> bool:
    labels = pod_labels(target)
    policies = [p["spec"] for p in of_kind("NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]
    policies = [p for p in policies if "Ingress" in p.get("policyTypes", ["Ingress"])]
    if not policies:
        return True
    kind, source_labels = source
    for policy in policies:
        for rule in policy.get("ingress", []):
            ports = rule.get("ports")
            if ports and not any(p["port"] <= port <= p.get("endPort", p["port"]) for p in ports):
                continue
            peers = rule.get("from")
            if peers is None:
                return True
            for peer in peers:
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    if kind == "pod" and selects(peer["podSelector"], source_labels):
                        return True
                elif (
                    "namespaceSelector" in peer
                    and kind == "namespace"
                    and selects(peer["namespaceSelector"], source_labels)
                ):
                    return True
    return False


def pod(name: str) -> Peer:
    return ("pod", pod_labels(name))


def test_every_pod_is_denied_what_no_policy_allows() -> None:
    deny = find("NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert not admitted(pod("orders-worker"), "flower", 5555)
    assert not admitted(OUTSIDE, "users-worker", 9100)


@pytest.mark.parametrize("svc", SERVICES)
def test_each_database_admits_its_own_service_only(svc: str) -> None:
    for role in ("api", "worker", "relay", "migrate"):
        assert admitted(pod(f"{svc}-{role}"), f"postgres-{svc}", 5432), role
    for other in SERVICES:
        if other != svc:
            assert not admitted(pod(f"{other}-worker"), f"postgres-{svc}", 5432), other
    assert not admitted(pod("flower"), f"postgres-{svc}", 5432)
    assert not admitted(OUTSIDE, f"postgres-{svc}", 5432)


def test_the_broker_admits_the_suites_processes_and_its_own_nodes_only() -> None:
    for name in ("users-api", "orders-worker", "notifications-relay", "users-migrate", "flower"):
        assert admitted(pod(name), "rabbitmq", 5672), name
    assert not admitted(pod("postgres-users"), "rabbitmq", 5672)
    assert not admitted(OUTSIDE, "rabbitmq", 5672)
    assert not admitted(pod("users-api"), "rabbitmq", 25672)  # clustering: nodes only
    assert admitted(pod("rabbitmq"), "rabbitmq", 25672) and admitted(pod("rabbitmq"), "rabbitmq", 35680)
    assert not admitted(OUTSIDE, "rabbitmq", 15672)  # management: port-forward only


def test_apis_are_open_and_metrics_ports_only_to_the_scraper() -> None:
    for svc in SERVICES:
        assert admitted(OUTSIDE, f"{svc}-api", 8000)
        for role in ("worker", "relay"):
            assert admitted(SCRAPER, f"{svc}-{role}", 9100) and not admitted(OUTSIDE, f"{svc}-{role}", 9100)
    assert admitted(SCRAPER, "flower", 5555) and not admitted(OUTSIDE, "flower", 5555)
    assert admitted(SCRAPER, "rabbitmq", 15692)
