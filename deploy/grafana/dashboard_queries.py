"""Print every PromQL query of the Grafana dashboards as a Prometheus rule file.

    python deploy/grafana/dashboard_queries.py > queries.rules.yml
    promtool check rules queries.rules.yml

so that `promtool` checks the dashboards' queries as it checks the alert
rules (.ci/run does). Grafana's variables are replaced by values Prometheus
accepts. Standard library only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

DASHBOARDS = Path(__file__).parent / "dashboards"
# Grafana variable -> a value that keeps the query valid PromQL.
VARIABLES = {"$__rate_interval": "5m", "$service": ".*", "$country": ".*"}


def queries(dashboard: dict) -> Iterator[tuple[str, str]]:
    """(panel title, expression) of every query in a dashboard."""
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel["title"], target["expr"]


def main() -> None:
    print("groups:")
    for path in sorted(DASHBOARDS.glob("*.json")):
        print(f"  - name: {json.dumps(path.name)}\n    rules:")
        for index, (title, expr) in enumerate(queries(json.loads(path.read_text()))):
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            record = f"dashboard:{path.stem.replace('-', '_')}:query{index}"  # unique: promtool lints duplicates
            print(f"      - record: {record}  # {title}")
            print(f"        expr: {json.dumps(expr)}")  # a JSON string is a YAML string


if __name__ == "__main__":
    sys.exit(main())
