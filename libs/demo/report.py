"""What the demo shows at the end: it waits until insights has applied every
fact the demo produced, then reads the rollout dashboard, the pairs at risk,
the cross-silo network and the evaluation results, writes the pictures to
files, and prints it all."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from libs.demo.api import Api, DemoError


@dataclass
class Findings:
    """What the services show once insights caught up, and the files written."""

    out_dir: Path
    files: dict[str, Path]
    rollout: dict[str, Any]
    network: dict[str, Any]
    at_risk: list[dict[str, Any]]
    results: dict[str, Any]


def answered(counts: Any) -> int:
    return sum(n for name, n in counts.items() if name.startswith("answered: "))


async def collect(api: Api, pid: str, counts: Counter, out_dir: Path, progress: Progress | None) -> Findings:
    """Wait until insights shows every fact the story ``counts``, then read
    and write what the demo shows (pictures into ``out_dir``)."""
    expected = {
        "enrolled": counts["enrolled"],
        "pairs_formed": counts["pairs formed"],
        "pairs_completed": counts["pairs completed"],
        "pairs_dissolved": counts["pairs dissolved"],
        "sessions_held": counts["sessions held"],
        "surveys_answered": answered(counts),
    }
    last: dict[str, Any] = {}

    async def caught_up() -> dict | None:
        rollout = await api.get(f"/insights/v1/programmes/{pid}/rollout")
        row = rollout["programme"][0] if rollout["programme"] else {}
        last.update({k: row.get(k) for k in expected})
        return rollout if all(row.get(k) == v for k, v in expected.items()) else None

    # Insights reads every topic and is the last to catch up: wait while it moves.
    total = sum(expected.values())
    task = progress.add_task("insights catching up", total=total) if progress is not None else None

    def applied() -> tuple:
        done = sum(min(last.get(k) or 0, v) for k, v in expected.items())
        if progress is not None and task is not None:
            progress.update(task, completed=done)
        return tuple(sorted(last.items()))

    try:
        rollout = await api.wait_for("insights to apply every fact of the demo", caught_up, progress=applied)
    except DemoError as exc:
        raise DemoError(f"{exc} (expected {expected}, insights shows {last})") from None
    if progress is not None and task is not None:
        progress.update(task, completed=total)
    at_risk = await api.pages("/insights/v1/pair-health", {"programme_id": pid})
    network = await api.get(f"/insights/v1/programmes/{pid}/network", params={"format": "json"})
    results = await api.get(f"/evaluation/v1/programmes/{pid}/results", params={"group_by": "wave"})
    programme_results = await api.get(f"/evaluation/v1/programmes/{pid}/results", params={"group_by": "programme"})
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for name, path, params in (
        ("network.svg", f"/insights/v1/programmes/{pid}/network", {"format": "svg"}),
        ("network.png", f"/insights/v1/programmes/{pid}/network", {"format": "png"}),
        ("rollout.svg", f"/insights/v1/programmes/{pid}/rollout/chart", {"format": "svg"}),
        ("rollout.png", f"/insights/v1/programmes/{pid}/rollout/chart", {"format": "png"}),
        ("network.graphml", f"/insights/v1/programmes/{pid}/network", {"format": "graphml"}),
    ):
        response = await api.request("GET", path, params=params)
        files[name] = out_dir / name
        files[name].write_bytes(response.content)
    return Findings(out_dir, files, rollout, network, at_risk, {"wave": results, "programme": programme_results})


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:+.1f} %"


def _rate(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def render(found: Findings, counts: Counter, elapsed_s: float, requests: int, console: Console) -> None:
    """Print the dashboard, the pairs at risk and the network figures."""
    rollout = found.rollout
    table = Table(title="Rollout dashboard (insights): per country, region and programme", show_lines=False)
    for column in ("where", "waves", "target", "enrolled", "pairs", "active", "done", "dissolved", "sessions",
                   "answered", "maturity", "days to 1st"):
        table.add_column(column, justify="left" if column == "where" else "right")

    def add(row: dict, where: str, style: str | None = None) -> None:
        table.add_row(
            where, str(row["waves"]), str(row["target_pairs"]), str(row["enrolled"]), str(row["pairs_formed"]),
            str(row["pairs_active"]), str(row["pairs_completed"]), str(row["pairs_dissolved"]),
            str(row["sessions_held"]), _rate(row["survey_response_rate"]), _pct(row["maturity_delta_percent"]),
            "-" if row["median_days_to_first_session"] is None else f"{row['median_days_to_first_session']:.0f}",
            style=style,
        )

    for row in sorted(rollout["country"], key=lambda r: -r["enrolled"]):
        add(row, row["country"])
    for row in rollout["region"]:
        add(row, row["region"], style="bold")
    for row in rollout["programme"]:
        add(row, "programme", style="bold cyan")
    console.print(table)

    at_risk = found.at_risk
    risk = Table(title=f"Pairs at risk: {len(at_risk)} (insights pair health, newest reason first; first 12)")
    for column in ("pair", "country", "wave", "status", "reasons"):
        risk.add_column(column)
    for item in at_risk[:12]:
        risk.add_row(str(item["pair_id"])[:8], item["country"], item.get("wave_name") or "", item["status"],
                     ", ".join(r["code"] for r in item["reasons"]))
    console.print(risk)

    measures = found.network.get("measures", {})
    net = Table(title="Cross-silo network (insights): share of pairs crossing each boundary")
    for column in ("dimension", "crossing share", "groups", "unreached", "closed (pairs only inside)", "bridges"):
        net.add_column(column)
    silos, bridges = measures.get("silos", {}), measures.get("bridges", [])
    groups_reached = measures.get("components", {})
    for dimension, share in (measures.get("crossing_share") or {}).items():
        dim_silos = silos.get(dimension, {})
        nodes = sum(1 for n in found.network.get("nodes", []) if n.get("kind") == dimension)
        net.add_row(dimension, _rate(share), str(nodes), str(len(dim_silos.get("unreached", []))),
                    str(len(dim_silos.get("closed", []))),
                    str(sum(1 for b in bridges if b["dimension"] == dimension)))
    console.print(net)
    console.print(f"{measures.get('pairs', 0)} pairs connect the groups; connected components per dimension: "
                  + ", ".join(f"{d} {n}" for d, n in groups_reached.items()))

    groups = found.results["programme"]["groups"]
    if groups:
        delta = groups[0]["maturity"]["delta"]
        console.print(
            f"Digital maturity (evaluation, paired over {delta['respondents']} mentees): "
            + ("withheld (fewer than k respondents)" if delta["withheld"] else
               f"{delta['pre']} -> {delta['post']} ({_pct(delta['delta_percent'])})")
        )
    happened = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    console.print(f"[dim]What happened: {happened}[/dim]")
    console.print(
        f"Done in {elapsed_s:.0f} s ({requests} HTTP requests). "
        f"Files in [bold]{found.out_dir}[/bold]: " + ", ".join(sorted(found.files))
    )
