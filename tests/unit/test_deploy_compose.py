"""docker-compose.yml against the Compose Specification, and everything it
names (build contexts, mounted files, ports, services) against the repository.

Docker is not needed: this reads files only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from services import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SCHEMA = json.loads((ROOT / "tests/data/compose-spec.json").read_text())
BINOME_PORT = "8000"  # what every service container listens on

#: Compose services that run Binome: built from this repository's Dockerfile.
BINOME_SERVICES = {name: spec for name, spec in COMPOSE["services"].items() if "build" in spec}


def test_compose_file_follows_the_compose_specification() -> None:
    jsonschema.validate(COMPOSE, SCHEMA)


def test_the_schema_check_rejects_a_broken_file() -> None:
    # The check has teeth: a misspelt key is refused.
    broken = {"services": {"enrollment": {"imag": "binome:local"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_every_listed_service_has_its_container_and_no_other() -> None:
    assert set(BINOME_SERVICES) == {s.name for s in SERVICES}


@pytest.mark.parametrize("name", sorted(BINOME_SERVICES))
def test_a_service_container_runs_that_service_alone_on_its_own_database(name: str) -> None:
    spec = BINOME_SERVICES[name]
    command = spec["command"]
    assert command[:2] == ["binome", "up"] and command[command.index("--service") + 1] == name
    env = spec["environment"]
    assert env["BINOME_DATABASE_URL"].rsplit("/", 1)[1] == name
    assert env["BINOME_PORT"] == BINOME_PORT and env["BINOME_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert BINOME_PORT in " ".join(spec["healthcheck"]["test"])
    databases = re.split(r"[,\s]+", COMPOSE["services"]["postgres"]["environment"]["POSTGRES_DATABASES"])
    assert name in databases
    # Start order: storage and broker healthy first.
    assert {d: c["condition"] for d, c in spec["depends_on"].items()} == {
        "postgres": "service_healthy",
        "kafka": "service_healthy",
    }


def test_build_contexts_and_dockerfile_exist() -> None:
    for spec in BINOME_SERVICES.values():
        build = spec["build"] if isinstance(spec["build"], dict) else {"context": spec["build"]}
        context = ROOT / build["context"]
        assert context.is_dir()
        assert (context / build.get("dockerfile", "Dockerfile")).is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for copied in re.findall(r"^COPY (\S+)", dockerfile, re.MULTILINE):
        assert (ROOT / copied).exists(), copied
    assert f"BINOME_PORT={BINOME_PORT}" in dockerfile and f"EXPOSE {BINOME_PORT}" in dockerfile


def bind_mounts() -> list[tuple[str, str]]:
    mounts = []
    for spec in COMPOSE["services"].values():
        for volume in spec.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                mounts.append((source, target))
    return mounts


def test_every_mounted_file_exists_and_named_volumes_are_declared() -> None:
    assert bind_mounts(), "no configuration is mounted"
    for source, _ in bind_mounts():
        assert (ROOT / source).exists(), source
    declared = set(COMPOSE["volumes"])
    for spec in COMPOSE["services"].values():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, source


def test_every_service_has_a_healthcheck_and_depends_only_on_healthy_services() -> None:
    services = COMPOSE["services"]
    for name, spec in services.items():
        assert "healthcheck" in spec, name
        for dependency, condition in spec.get("depends_on", {}).items():
            assert dependency in services and condition == {"condition": "service_healthy"}, (name, dependency)


def test_published_ports_are_distinct_and_match_what_listens() -> None:
    published = {}
    for name, spec in COMPOSE["services"].items():
        for port in spec.get("ports", []):
            host, container = str(port).split(":")
            assert host not in published, f"{name} and {published.get(host)} both publish {host}"
            published[host] = name
            assert container in " ".join(spec["healthcheck"]["test"]), (name, container)
    assert published == {"8000": "gateway", "9090": "prometheus", "3000": "grafana"}
    nginx = (ROOT / "deploy/gateway/nginx.conf").read_text()
    assert re.search(r"^\s*listen 8080;", nginx, re.MULTILINE)


def test_the_gateway_routes_exactly_the_binome_services_to_their_port() -> None:
    nginx = (ROOT / "deploy/gateway/nginx.conf").read_text()
    allow_list = re.search(r"map \$path_service \$binome_service \{(.*?)\}", nginx, re.DOTALL)
    assert allow_list is not None
    routes = dict(re.findall(r"^\s*([a-z][a-z0-9-]*)\s+([a-z][a-z0-9-]*);", allow_list.group(1), re.MULTILINE))
    assert routes == {name: name for name in BINOME_SERVICES}
    assert set(re.findall(r"proxy_pass http://\$binome_service:(\d+);", nginx)) == {BINOME_PORT}


def test_prometheus_scrapes_every_binome_service_and_loads_the_rules() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    targets = {(name, sd["port"]) for sd in job["dns_sd_configs"] for name in sd["names"]}
    assert targets == {(name, int(BINOME_PORT)) for name in BINOME_SERVICES}
    rule_files = [p for pattern in config["rule_files"] for p in (ROOT / "deploy/prometheus").glob(pattern)]
    assert [p.name for p in rule_files] == ["binome.rules.yml"]
    # Mounted where the container reads its configuration.
    assert ("./deploy/prometheus", "/etc/prometheus") in bind_mounts()
    assert "--config.file=/etc/prometheus/prometheus.yml" in COMPOSE["services"]["prometheus"]["command"]


def test_grafana_is_provisioned_with_the_datasource_and_dashboards() -> None:
    grafana = COMPOSE["services"]["grafana"]
    mounts = dict(bind_mounts())
    provisioning = ROOT / "deploy/grafana/provisioning"
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    (datasource,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"]
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in COMPOSE["services"]
    (provider,) = yaml.safe_load((provisioning / "dashboards/binome.yml").read_text())["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    dashboards = ROOT / "deploy/grafana/dashboards"
    assert (dashboards / Path(home).name).is_file()
    for path in dashboards.glob("*.json"):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == datasource["uid"], (path.name, panel["title"])


def test_postgres_init_script_creates_the_databases_it_is_given() -> None:
    script = (ROOT / "deploy/postgres/create-databases.sh").read_text()
    assert "POSTGRES_DATABASES" in script and "CREATE DATABASE" in script
    assert ("./deploy/postgres/create-databases.sh", "/docker-entrypoint-initdb.d/create-databases.sh") in bind_mounts()


def test_every_service_reaches_the_one_key_vault() -> None:
    """With a database per service, the GDPR key vault must be one shared
    database: what enrollment seals, matching and the others must open."""
    databases = re.split(r"[,\s]+", COMPOSE["services"]["postgres"]["environment"]["POSTGRES_DATABASES"])
    urls = set()
    for spec in BINOME_SERVICES.values():
        env = spec["environment"]
        url = env["BINOME_VAULT_DATABASE_URL"]
        assert url.rsplit("/", 1)[1] in databases
        assert url != env["BINOME_DATABASE_URL"]
        urls.add(url)
    assert len(urls) == 1
