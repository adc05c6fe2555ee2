"""The monitoring files under deploy/ are checked offline: the Grafana dashboard against a committed schema
and against the metrics the suite really exports, Prometheus' scrape targets against the compose services,
and the Grafana provisioning files against each other. No Django, no network.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from common.bus import metrics

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD_JSON = DEPLOY / "grafana" / "dashboards" / "suite.json"
DATASOURCES_YML = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER_YML = DEPLOY / "grafana" / "provisioning" / "dashboards" / "suite.yml"
DASHBOARD_SCHEMA = ROOT / "tests" / "support" / "grafana" / "dashboard.schema.json"
COMPOSE_YAML = ROOT / "compose.yaml"

# Where compose mounts deploy/grafana/dashboards inside the Grafana container.
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards"
DATASOURCE_UID = "prometheus"
# Grafana's own built-in annotation source; every dashboard may use it and it needs no provisioning.
GRAFANA_BUILTIN_UIDS = {"-- Grafana --", "grafana"}


def exported_metric_names() -> frozenset[str]:
    """The metrics the suite exports, read from common.bus.metrics (the names Prometheus
    sees: counters with `_total`, histograms without their series suffixes)."""
    collectors = (*metrics.COUNTERS, metrics.BusStateCollector("any", "amqp://unused"))
    return frozenset(
        family.name + ("_total" if family.type == "counter" else "")
        for collector in collectors
        for family in collector.describe()
    )


SUITE_METRICS = exported_metric_names()
FLOWER_METRICS = frozenset({"flower_events_total", "flower_worker_online", "flower_task_runtime_seconds"})
KNOWN_METRICS = SUITE_METRICS | FLOWER_METRICS

# Every scrape target there is on the compose network, by the job that should scrape it.
EXPECTED_TARGETS: dict[str, set[str]] = {
    "apis": {"users-api:8001", "orders-api:8002", "notifications-api:8003"},
    "workers": {"users-worker:9101", "orders-worker:9102", "notifications-worker:9103"},
    "relays": {"users-relay:9111", "orders-relay:9112", "notifications-relay:9113"},
    "flower": {"flower:5555"},
    "rabbitmq": {"rabbitmq:15692"},
}
KNOWN_TARGETS = set().union(*EXPECTED_TARGETS.values())


# --- helpers -------------------------------------------------------------------------------------------


def load_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} does not hold a JSON object"
    return data


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} does not hold a YAML mapping"
    return data


def _where(error: Any) -> str:
    return "/" + "/".join(str(part) for part in error.absolute_path)


def _by_place(error: Any) -> list[str]:
    return [str(part) for part in error.absolute_path]


def _describe(error: Any, indent: str = "") -> list[str]:
    """One line per violation; for anyOf/oneOf, the failures of the alternative that came closest."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[object, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        closest = min(branches.values(), key=len)
        lines = [f"{indent}{_where(error)}: fits no {error.validator} alternative; the closest fails with:"]
        for sub in sorted(closest, key=_by_place):
            lines += _describe(sub, indent + "    ")
        return lines
    return [f"{indent}{_where(error)}: {error.message[:300]}"]


def schema_errors(document: object, schema: dict[str, Any]) -> list[str]:
    """Each violation as readable lines: where in the document and what is wrong."""
    validator = jsonschema.Draft7Validator(schema)
    return ["\n".join(_describe(error)) for error in sorted(validator.iter_errors(document), key=_by_place)]


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Top-level panels and the panels inside (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def query_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (panel for panel in all_panels(dashboard) if panel.get("type") != "row")


def panel_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in query_panels(dashboard):
        for target in panel.get("targets", []):
            yield str(panel.get("title")), str(target.get("expr", ""))


_PROMQL_WORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
    }
)
_HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects, histogram series folded to their family name."""
    assert "__name__" not in expr, f"select metrics by name, not by __name__ matchers: {expr}"
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)\s*(\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _PROMQL_WORDS:
            continue
        names.add(_HISTOGRAM_SUFFIX.sub("", word) if word.startswith(("suite_", "flower_")) else word)
    return names


def variable_metric_names(query: str) -> set[str]:
    """Metric names in a Grafana Prometheus variable query (label_values, query_result or plain PromQL)."""
    query = query.strip()
    if match := re.fullmatch(r"label_values\((.*),\s*[A-Za-z_]\w*\s*\)", query, flags=re.DOTALL):
        return metric_names(match.group(1))
    if re.fullmatch(r"label_values\(\s*[A-Za-z_]\w*\s*\)|label_names\(\)|metrics\(.*\)", query):
        return set()
    if match := re.fullmatch(r"query_result\((.*)\)", query, flags=re.DOTALL):
        return metric_names(match.group(1))
    return metric_names(query)


def variable_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else query
        if variable.get("type") == "query" and isinstance(text, str):
            yield str(variable.get("name")), text


def datasource_uids(dashboard: dict[str, Any]) -> set[str]:
    uids: set[str] = set()
    holders: list[dict[str, Any]] = [*all_panels(dashboard)]
    holders += [target for panel in query_panels(dashboard) for target in panel.get("targets", [])]
    holders += dashboard.get("templating", {}).get("list", [])
    holders += dashboard.get("annotations", {}).get("list", [])
    for holder in holders:
        datasource = holder.get("datasource")
        if isinstance(datasource, dict) and "uid" in datasource:
            uids.add(str(datasource["uid"]))
    return uids - GRAFANA_BUILTIN_UIDS


# --- Grafana dashboard: schema -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return load_json(DASHBOARD_SCHEMA)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_json(DASHBOARD_JSON)


def test_the_committed_schema_is_a_strict_draft_07_schema(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$ref"] == "#/definitions/Dashboard"
    for name in ("Dashboard", "Panel", "RowPanel", "VariableModel", "FieldConfigSource", "GridPos"):
        assert schema["definitions"][name]["additionalProperties"] is False, f"{name} is not strict"


def test_the_dashboard_validates_against_the_grafana_schema(
    dashboard: dict[str, Any], schema: dict[str, Any]
) -> None:
    errors = schema_errors(dashboard, schema)
    assert not errors, f"{DASHBOARD_JSON} breaks the dashboard schema:\n" + "\n".join(errors)


def test_the_schema_check_catches_a_broken_dashboard(
    dashboard: dict[str, Any], schema: dict[str, Any], tmp_path: Path
) -> None:
    broken = copy.deepcopy(dashboard)
    first_query_panel = next(i for i, p in enumerate(broken["panels"]) if p.get("type") != "row")
    broken["panels"][first_query_panel].pop("type", None)
    broken["panels"][first_query_panel]["gridPos"]["w"] = "wide"
    broken["panel"] = broken.pop("panels")  # misspelled
    broken["schemaVersion"] = "39"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken), encoding="utf-8")

    errors = schema_errors(load_json(path), schema)

    report = "\n".join(errors)
    assert any("'panel' was unexpected" in line for line in errors), report
    assert any(line.startswith("/schemaVersion: '39' is not of type 'number'") for line in errors), report
    # With `panels` spelled right, the panel is reported with what is wrong in it.
    broken["panels"] = broken.pop("panel")
    errors = schema_errors(broken, schema)
    report = "\n".join(errors)
    (panel_error,) = [e for e in errors if e.startswith(f"/panels/{first_query_panel}:")]
    assert f"/panels/{first_query_panel}: 'type' is a required property" in panel_error, report
    assert f"/panels/{first_query_panel}/gridPos/w: 'wide' is not of type 'number'" in panel_error, report


# --- Grafana dashboard: content ------------------------------------------------------------------------


def test_the_dashboard_is_identified_for_provisioning(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "suite-events"
    assert dashboard["title"] == "Event suite"
    assert dashboard["id"] is None
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 39


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (type) (rate(suite_events_published_total{service=~"$service"}[$__rate_interval]))',
            {"suite_events_published_total"},
        ),
        (
            "histogram_quantile(0.95, sum by (le, service) "
            '(rate(suite_handler_duration_seconds_bucket{service=~"a|b", type!="x"}[5m])))',
            {"suite_handler_duration_seconds"},
        ),
        ("rate(suite_x_sum[1m]) / on (service) group_left rate(suite_x_count[1m]) > bool 0", {"suite_x"}),
        ("sum without (instance) (up) or vector(0)", {"up"}),
        ("max_over_time(suite_outbox_pending[10m:1m] offset 5m)", {"suite_outbox_pending"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("label_values(suite_events_published_total, service)", {"suite_events_published_total"}),
        ('label_values(suite_outbox_pending{service=~"a"}, service)', {"suite_outbox_pending"}),
        ("label_values(service)", set()),
        ("query_result(topk(3, suite_outbox_failed))", {"suite_outbox_failed"}),
    ],
)
def test_metric_names_are_read_out_of_variable_queries(query: str, names: set[str]) -> None:
    assert variable_metric_names(query) == names


def test_every_charted_metric_exists_and_every_suite_metric_is_charted(dashboard: dict[str, Any]) -> None:
    charted: set[str] = set()
    unknown: list[str] = []
    exprs = list(panel_exprs(dashboard))
    assert exprs, "the dashboard charts nothing"
    for title, expr in exprs:
        assert expr.strip(), f"panel {title!r} has a target without a PromQL expr"
        names = metric_names(expr)
        assert names, f"panel {title!r}: no metric in {expr!r}"
        charted |= names
        unknown += [f"panel {title!r}: {name} in {expr!r}" for name in sorted(names - KNOWN_METRICS)]
    for variable, query in variable_queries(dashboard):
        unknown += [
            f"variable {variable!r}: {n} in {query!r}"
            for n in sorted(variable_metric_names(query) - KNOWN_METRICS)
        ]
    assert not unknown, "the dashboard charts metrics nothing exports:\n" + "\n".join(unknown)
    missing = SUITE_METRICS - charted
    assert not missing, f"suite metrics no panel charts: {sorted(missing)}"


STATE_GAUGES = (
    "suite_outbox_pending",
    "suite_outbox_oldest_pending_age_seconds",
    "suite_outbox_failed",
    "suite_dead_letter_queue_depth",
)


def test_state_gauges_are_deduplicated_not_summed(dashboard: dict[str, Any]) -> None:
    """Every process of a service (API, worker, relay) reports the same outbox and dead-letter gauges."""
    summed = [
        f"panel {title!r}: {expr}"
        for title, expr in panel_exprs(dashboard)
        if any(gauge in metric_names(expr) for gauge in STATE_GAUGES)
        and not expr.startswith("max by (service)")
    ]
    assert not summed, "aggregate state gauges with max by (service):\n" + "\n".join(summed)


def test_the_service_variable_offers_all_services(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    service = variables["service"]
    assert service["type"] == "query"
    assert service["includeAll"] is True
    assert service["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
    query = service["query"]["query"] if isinstance(service["query"], dict) else service["query"]
    assert query == "label_values(suite_events_published_total, service)"
    suite_exprs = [expr for _, expr in panel_exprs(dashboard) if "suite_" in expr]
    unfiltered = [expr for expr in suite_exprs if "$service" not in expr]
    assert not unfiltered, f"suite panels that ignore the service variable: {unfiltered}"


def test_panels_use_the_provisioned_datasource_and_have_unique_ids_and_positions(
    dashboard: dict[str, Any],
) -> None:
    expected = {"type": "prometheus", "uid": DATASOURCE_UID}
    problems: list[str] = []
    ids: list[int] = []
    for panel in all_panels(dashboard):
        title = panel.get("title")
        ids.append(panel.get("id", -1))
        grid = panel.get("gridPos")
        if not (isinstance(grid, dict) and {"h", "w", "x", "y"} <= grid.keys()):
            problems.append(f"panel {title!r}: gridPos missing or incomplete: {grid}")
        elif grid["x"] + grid["w"] > 24:
            problems.append(f"panel {title!r}: wider than the 24-column grid: {grid}")
        if panel.get("type") == "row":
            continue
        if panel.get("datasource") != expected:
            problems.append(f"panel {title!r}: datasource {panel.get('datasource')}")
        if not panel.get("targets"):
            problems.append(f"panel {title!r}: no queries")
        for target in panel.get("targets", []):
            if target.get("datasource", expected) != expected:
                problems.append(f"panel {title!r} target {target.get('refId')}: {target.get('datasource')}")
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated or -1 in ids:
        problems.append(f"panel ids must be present and unique; duplicated: {duplicated}")
    assert not problems, "\n".join(problems)


def test_the_dead_letter_stat_turns_red_at_one_message(dashboard: dict[str, Any]) -> None:
    stats = [
        p
        for p in query_panels(dashboard)
        if p.get("type") == "stat" and any("suite_dead_letter_queue_depth" in t["expr"] for t in p["targets"])
    ]
    assert len(stats) == 1
    steps = stats[0]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps == [{"color": "green", "value": None}, {"color": "red", "value": 1}]


# --- Prometheus ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return load_yaml(PROMETHEUS_YML)


def test_prometheus_scrapes_every_known_target_once_under_its_job(prometheus: dict[str, Any]) -> None:
    assert prometheus["global"]["scrape_interval"] == "15s"
    jobs = prometheus["scrape_configs"]
    names = [job["job_name"] for job in jobs]
    assert len(names) == len(set(names)), f"duplicate job names: {names}"
    assert set(names) == set(EXPECTED_TARGETS), names
    seen: list[str] = []
    for job in jobs:
        assert job.keys().isdisjoint({"kubernetes_sd_configs", "file_sd_configs", "dns_sd_configs"}), job
        assert job.get("metrics_path", "/metrics") == "/metrics", job["job_name"]
        targets: set[str] = set()
        for group in job["static_configs"]:
            service = group.get("labels", {}).get("service")
            assert isinstance(service, str) and service, f"{job['job_name']}: group without a service label"
            targets |= set(group["targets"])
            seen += group["targets"]
        unknown = targets - KNOWN_TARGETS
        assert not unknown, f"{job['job_name']} scrapes targets that do not exist: {sorted(unknown)}"
        assert targets == EXPECTED_TARGETS[job["job_name"]], job["job_name"]
    assert len(seen) == len(set(seen)), f"a target is scraped twice: {seen}"


def test_each_suite_target_is_labelled_with_its_own_service(prometheus: dict[str, Any]) -> None:
    for job in prometheus["scrape_configs"]:
        for group in job["static_configs"]:
            for target in group["targets"]:
                host = target.split(":")[0]
                assert host.split("-")[0] == group["labels"]["service"], f"{job['job_name']}: {target}"


METRICS_TOKEN_FILE = "/run/secrets/metrics_token"  # where compose mounts the secret in Prometheus


def test_promtool_accepts_the_prometheus_config(tmp_path: Path) -> None:
    """As Prometheus loads it in compose: with the token file compose mounts (promtool opens it)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed: make tools (or bash tests/support/system-tools.sh) installs it"
    token = tmp_path / "metrics_token"
    token.write_text("a-token")
    config = tmp_path / "prometheus.yml"
    text = PROMETHEUS_YML.read_text()
    assert METRICS_TOKEN_FILE in text
    config.write_text(text.replace(METRICS_TOKEN_FILE, str(token)))
    result = subprocess.run(
        [promtool, "check", "config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"promtool check config failed:\n{result.stdout}{result.stderr}"


# --- Grafana provisioning ------------------------------------------------------------------------------


def test_the_datasource_the_dashboard_uses_is_provisioned(dashboard: dict[str, Any]) -> None:
    provisioning = load_yaml(DATASOURCES_YML)
    assert provisioning["apiVersion"] == 1
    sources = provisioning["datasources"]
    by_uid = {source["uid"]: source for source in sources}
    assert len(by_uid) == len(sources), "duplicate datasource uids"
    assert [s["name"] for s in sources if s.get("isDefault")] == ["Prometheus"]
    prometheus = by_uid[DATASOURCE_UID]
    assert prometheus["name"] == "Prometheus"
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    used = datasource_uids(dashboard)
    assert used == {DATASOURCE_UID}, used
    assert used <= by_uid.keys(), (
        f"dashboard uses datasources nobody provisions: {sorted(used - by_uid.keys())}"
    )


def test_the_dashboard_provider_loads_the_mounted_dashboards() -> None:
    provisioning = load_yaml(PROVIDER_YML)
    assert provisioning["apiVersion"] == 1
    (provider,) = provisioning["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == DASHBOARDS_MOUNT
    assert DASHBOARD_JSON.parent.is_dir() and DASHBOARD_JSON.exists()


def test_compose_mounts_the_monitoring_files_where_they_are_expected() -> None:
    """compose runs Grafana and Prometheus, each with the files above mounted where they are read."""
    services = load_yaml(COMPOSE_YAML).get("services", {})
    assert {"grafana", "prometheus"} <= set(services), sorted(services)
    mounts: dict[str, set[tuple[str, str]]] = {}
    for name in ("grafana", "prometheus"):
        pairs = set()
        for volume in services[name].get("volumes", []):
            spec = volume if isinstance(volume, str) else f"{volume.get('source')}:{volume.get('target')}"
            source, target = spec.split(":")[:2]
            pairs.add((str((ROOT / source).resolve()) if source.startswith(".") else source, target))
        mounts[name] = pairs
    grafana = mounts["grafana"]
    assert (str(DASHBOARD_JSON.parent), DASHBOARDS_MOUNT) in grafana, grafana
    assert (str(DEPLOY / "grafana" / "provisioning"), "/etc/grafana/provisioning") in grafana, grafana
    prometheus = mounts["prometheus"]
    mounted = {source for source, target in prometheus if target.startswith("/etc/prometheus")}
    assert mounted & {str(PROMETHEUS_YML), str(PROMETHEUS_YML.parent)}, prometheus


def test_the_metric_list_is_the_code_s_own() -> None:
    # every metric the code defines, the state gauges included, and nothing typed by hand
    assert {"suite_events_published_total", "suite_handler_duration_seconds", "suite_outbox_pending"} <= (
        SUITE_METRICS
    )
    assert set(metrics.STATE_GAUGES) <= SUITE_METRICS
