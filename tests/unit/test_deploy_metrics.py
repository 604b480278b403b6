"""Every metric (and label) that the alert rules and Grafana dashboards in
deploy/ query exists in libs/observability/metrics.py, so no panel or alert
silently watches a series that is never written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from libs.observability import metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/rules/binome.rules.yml"
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))

# Sample names each metric type exposes, from its family name.
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
_METRIC = re.compile(r"(?<![\w:])(binome_\w+)(\{[^}]*\})?")
_RECORDED = re.compile(r"(?<![\w:])(binome:[\w:]+)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_PROMETHEUS_OWN = re.compile(r"(?<![\w:])up\{")  # the scrape's own series


def defined_series() -> dict[str, set[str]]:
    """Sample name -> its label names, for every metric defined in metrics.py."""
    series: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                labels = set(value._labelnames)
                for suffix in _SUFFIXES[family.type]:
                    series[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


def used_series(expr: str) -> Iterator[tuple[str, set[str]]]:
    """(metric name, label names in its selector) for each binome_* metric an expression reads."""
    for name, selector in _METRIC.findall(expr):
        # Label values are strings and may hold anything: drop them first.
        labels = set(re.findall(r"(\w+)\s*[!=]~?", _STRING.sub('""', selector)))
        yield name, labels


def rule_expressions() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule["record"], rule["expr"]


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                yield f"{path.name}: {panel['title']}", target["expr"]
        for variable in dashboard["templating"]["list"]:
            yield f"{path.name}: ${variable['name']}", variable["definition"]


EXPRESSIONS = [*rule_expressions(), *dashboard_expressions()]


def test_there_are_rules_and_three_dashboards() -> None:
    assert {p.stem for p in DASHBOARDS} == {"service-overview", "event-pipeline", "programme-rollout"}
    assert sum(1 for _ in rule_expressions()) >= 8


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[w for w, _ in EXPRESSIONS])
def test_every_queried_metric_and_label_is_defined(where: str, expr: str) -> None:
    defined = defined_series()
    used = list(used_series(expr))
    assert used or _RECORDED.search(expr) or _PROMETHEUS_OWN.search(expr), f"{where} reads no metric we know"
    for name, labels in used:
        assert name in defined, f"{where}: {name} is not defined in libs/observability/metrics.py"
        assert labels <= defined[name], f"{where}: {name} has no label {labels - defined[name]}"


def test_recorded_series_used_anywhere_are_recorded_by_the_rules() -> None:
    recorded = {name for name, _ in rule_expressions() if name.startswith("binome:")}
    for where, expr in EXPRESSIONS:
        for name in _RECORDED.findall(expr):
            assert name in recorded, f"{where}: {name} is not a recording rule"


def test_the_check_finds_unknown_metrics_and_labels() -> None:
    defined = defined_series()
    used = dict(used_series('sum(rate(binome_http_requests_total{route=~"/v1/.*", tenant="x{y}"}[5m])) / binome_nope'))
    assert used == {"binome_http_requests_total": {"route", "tenant"}, "binome_nope": set()}
    assert "binome_nope" not in defined
    assert not used["binome_http_requests_total"] <= defined["binome_http_requests_total"]  # no tenant label


def test_the_issue_list_of_metrics_is_defined() -> None:
    defined = defined_series()
    required = {
        "binome_http_requests_total": {"service", "route", "status"},  # rate and errors per route
        "binome_http_request_duration_seconds_bucket": {"service", "route", "le"},  # latency per route
        "binome_events_appended_total": {"service", "type"},
        "binome_outbox_lag_events": {"service"},
        "binome_outbox_lag_seconds": {"service"},
        "binome_consumer_lag": {"service", "consumer", "topic", "partition"},  # per group and partition
        "binome_projection_lag_seconds": {"service", "consumer"},
        "binome_consumer_backlog_events": {"service", "consumer", "source"},  # against the event store
        "binome_consumer_backlog_seconds": {"service", "consumer", "source"},
        "binome_dead_letters_total": {"service", "consumer"},
        "binome_matching_run_duration_seconds_bucket": {"service"},
        "binome_pairs_active": {"service", "country"},
        "binome_pairs_at_risk": {"service", "country"},
    }
    for name, labels in required.items():
        assert name in defined and labels <= defined[name], name
