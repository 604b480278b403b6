#!/usr/bin/env python
"""Binome matching benchmark: our exact solver vs networkx vs a greedy baseline.

Run from the repository root::

    .venv/bin/python bench/matching.py            # default (a few minutes)
    .venv/bin/python bench/matching.py --quick    # under about a minute

Instances are generated (``services.matching.domain.synthetic``: 26 countries,
subsidiaries, functions in families, languages, 24 digital themes with levels,
learner profiles, intentions, capacities 1-3, a few reporting lines, earlier
partners and HR exclusions): 50 x 100, 1,500 x 3,000, 10,000 x 20,000 and a
"tight" 1,500-mentee instance whose mentor slots exceed the mentees by 2 %.

Every measurement runs in a forked child: time is the median of the repeats,
peak memory is the growth of the child's peak RSS (VmHWM, reset before each
call) over its RSS at the start of the call. A child that exceeds the time cap
is killed and reported as "skipped: > N s".

"Same input" comparisons: networkx gets exactly the candidate graph our
candidate path solves (every feasible pair at 50 x 100, each mentee's top-K
mentors by score at the larger sizes), with the same capacities, and we time
our kernel on that graph beside it; both times run from the
same edge arrays to pairs (graph building included). Our kernel is
``assign_graph``: LAPJVsp on the sparse graph, or dense Jonker-Volgenant when
the graph is small. networkx's min-cost flow
(``network_simplex``) gets integer weights (score x 10^6); its optimum is
compared with ours within the rounding that implies.

The table is printed, and written with the environment to
``bench/out/matching.json``; the times are also drawn, per instance and
solver on a log scale, in ``bench/out/matching.svg`` and ``.png``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import pickle
import platform
import select
import signal
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/matching.py` from anywhere

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from services.matching.domain import (  # noqa: E402
    CandidateGraph,
    MatchingPolicy,
    MatchingResult,
    Objective,
    ScoreModel,
    assign_graph,
    solve,
)
from services.matching.domain.solver import matched_bonus  # noqa: E402
from tests.support.matching_greedy import greedy_match  # noqa: E402
from tests.support.matching_synthetic import Pool, generate_pool, generate_tight_pool  # noqa: E402

OUT = ROOT / "bench" / "out" / "matching.json"
AIM_MID_S = 0.5  # 1,500 x 3,000 including scoring, exact
AIM_BIG_S = 10.0  # 10,000 x 20,000 including scoring
AIM_BIG_GAP = 0.001  # within 0.1 % of the full optimum
AIM_SPEEDUP = 100.0  # vs networkx on the same input, same optimum
NX_SCALE = 10**6  # integer weights for network_simplex
K = 50

console = Console(width=None if sys.stdout.isatty() else 160)


# --------------------------------------------------------------------------- measuring


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def measure(fn: Callable[[], Any], summarize: Callable[[Any], dict], *, repeat: int, timeout: float) -> dict | None:
    """Run ``fn`` ``repeat`` times in a forked child; None if it took longer than ``timeout``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns, never flushes the parent's streams
        try:
            os.close(r)
            times, peaks, summary = [], [], {}
            for _ in range(repeat):
                gc.collect()
                can_reset = _reset_peak()
                base = _status_kb("VmRSS")
                t = time.perf_counter()
                res = fn()
                times.append(time.perf_counter() - t)
                peaks.append((_status_kb("VmHWM") - base) / 1024 if can_reset else float("nan"))
                summary = summarize(res)
                del res
            payload = pickle.dumps({"times": times, "peak_mb": max(peaks), "summary": summary})
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            payload = pickle.dumps({"error": f"{type(exc).__name__}: {exc}"})
        view = memoryview(payload)
        while view:
            view = view[os.write(w, view) :]
        os._exit(0)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                return None
            data = os.read(r, 1 << 20)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    out = pickle.loads(b"".join(chunks))
    if "error" in out:
        raise RuntimeError(out["error"])
    out["seconds"] = statistics.median(out["times"])
    return out


# --------------------------------------------------------------------------- solvers under test


def edges_of(graph: CandidateGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.repeat(np.arange(graph.n_rows), np.diff(graph.indptr))
    return rows, graph.cols.astype(np.int64), graph.scores


def nx_min_cost_flow(graph: CandidateGraph, capacity: np.ndarray, objective: Objective) -> np.ndarray:
    """networkx network simplex: source -> mentee -> mentor -> sink, plus a bypass for unmatched mentees."""
    n = graph.n_rows
    rows, cols, w = edges_of(graph)
    bonus = matched_bonus(objective, n)
    G = nx.DiGraph()
    G.add_node("s", demand=-n)
    G.add_node("t", demand=n)
    G.add_edge("s", "t", capacity=n, weight=0)
    G.add_edges_from(("s", i, {"capacity": 1, "weight": 0}) for i in range(n))
    G.add_edges_from((n + j, "t", {"capacity": int(capacity[j]), "weight": 0}) for j in np.unique(cols).tolist())
    G.add_edges_from(
        (r, n + c, {"capacity": 1, "weight": -round((x + bonus) * NX_SCALE)})
        for r, c, x in zip(rows.tolist(), cols.tolist(), w.tolist())
        if capacity[c] > 0
    )
    _, flow = nx.network_simplex(G)
    out = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        for node, f in flow[i].items():
            if f > 0:
                out[i] = node - n
    return out


def nx_max_weight_matching(graph: CandidateGraph, capacity: np.ndarray, objective: Objective) -> np.ndarray:
    """networkx blossom matching on the slot-expanded bipartite graph."""
    n = graph.n_rows
    rows, cols, w = edges_of(graph)
    bonus = matched_bonus(objective, n)
    degree = np.bincount(cols, minlength=graph.n_cols)
    H = nx.Graph()
    for r, c, x in zip(rows.tolist(), cols.tolist(), w.tolist()):
        for s in range(int(min(capacity[c], degree[c]))):
            H.add_edge(r, ("slot", c, s), weight=round((x + bonus) * NX_SCALE))
    out = np.full(n, -1, dtype=np.int64)
    for a, b in nx.max_weight_matching(H):
        i, slot = (a, b) if isinstance(a, int) else (b, a)
        out[i] = slot[1]
    return out


def summarize_assignment(graph: CandidateGraph) -> Callable[[np.ndarray], dict]:
    rows, cols, w = edges_of(graph)

    def summarize(assignment: np.ndarray) -> dict:
        hit = cols == assignment[rows]
        return {"total": float(w[hit].sum()), "matched": int((assignment >= 0).sum())}

    return summarize


def summarize_result(r: MatchingResult) -> dict:
    return {
        "total": r.total_score,
        "matched": r.matched,
        "unmatched": len(r.unmatched),
        "upper_bound": r.upper_bound,
        "upper_bound_row_max": r.stats.get("upper_bound_row_max"),
        "gap": r.gap,
        "proven_optimal": r.proven_optimal,
        "method": r.method,
        "stats": {k: v for k, v in r.stats.items() if isinstance(v, int | float | str | bool)},
    }


# --------------------------------------------------------------------------- instances


def instances(quick: bool) -> list[dict]:
    return [
        {"name": "50×100", "make": lambda: generate_pool(50, 100, seed=50), "k": None, "repeat": 5 if not quick else 3},
        {"name": "1,500×3,000", "make": lambda: generate_pool(1500, 3000, seed=1500), "k": K, "repeat": 5 if not quick else 2},
        {"name": "10,000×20,000", "make": lambda: generate_pool(10_000, 20_000, seed=10_000), "k": K, "repeat": 3 if not quick else 1},
        {
            "name": "tight 1,500",
            "make": lambda: generate_tight_pool(1500, slack=0.02, seed=7),
            "k": K,
            "repeat": 5 if not quick else 2,
            "objectives": list(Objective),
        },
    ]


def fmt_s(x: float | None) -> str:
    if x is None:
        return "—"
    if x < 0.01:
        return f"{x:.2g}"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def fmt_gap(g: float | None) -> str:
    return "—" if g is None or not math.isfinite(g) else f"{100 * g:.3f} %"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, shorter networkx cap (about a minute)")
    ap.add_argument("--nx-cap", type=float, default=None, help="seconds before a networkx run is abandoned")
    args = ap.parse_args()
    nx_cap = args.nx_cap or (10.0 if args.quick else 120.0)
    started = time.perf_counter()
    load = os.getloadavg()
    rows_out: list[dict] = []
    summary: list[dict] = []
    mwm_reference: tuple[int, float] | None = None  # (nodes, seconds) at the smallest size

    console.print(
        f"[bold]Binome matching benchmark[/] — {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} at start; numpy {np.__version__}, scipy {scipy.__version__}, "
        f"networkx {nx.__version__}; networkx cap {nx_cap:g} s{' (quick)' if args.quick else ''}"
    )
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True) as progress:

        def step(text: str):
            return progress.add_task(text, total=None)

        for inst in instances(args.quick):
            name, repeat = inst["name"], inst["repeat"]
            task = step(f"{name}: generating the pool")
            pool: Pool = inst["make"]()
            progress.remove_task(task)
            n, m = len(pool.mentees), len(pool.mentors)
            info = {"instance": name, "mentees": n, "mentors": m, "slots": pool.slots}
            objectives = inst.get("objectives", [Objective.MAX_TOTAL_SCORE])
            ours: dict[Objective, dict] = {}
            for objective in objectives:
                policy = MatchingPolicy(objective=objective)
                task = step(f"{name}: our solver ({objective.value}, incl. scoring) × {repeat}")
                res = measure(
                    lambda policy=policy: solve(pool.mentees, pool.mentors, policy, pool.constraints),
                    summarize_result,
                    repeat=repeat,
                    timeout=600,
                )
                progress.remove_task(task)
                ours[objective] = res
                rows_out.append({**info, "solver": "ours solve()", "objective": objective.value, "input": "profiles", **res})

            # the same input for networkx and our kernel
            task = step(f"{name}: building the candidate graph")
            model = ScoreModel(
                sorted(pool.mentees, key=lambda p: p.id), sorted(pool.mentors, key=lambda p: p.id), MatchingPolicy(), pool.constraints, check_capacity=False
            )
            k = inst["k"] or m
            graph = model.candidates(k)
            capacity = model.capacity
            progress.remove_task(task)
            graph_label = "all pairs" if inst["k"] is None else f"top-{k}"
            summarize = summarize_assignment(graph)
            obj = Objective.MAX_TOTAL_SCORE
            task = step(f"{name}: our kernel on the {graph_label} ({graph.n_edges:,} edges) × {repeat}")
            kernel = measure(lambda: assign_graph(graph, capacity, obj), summarize, repeat=repeat, timeout=600)
            progress.remove_task(task)
            rows_out.append({**info, "solver": "ours assign_graph", "objective": obj.value, "input": graph_label, **kernel})

            task = step(f"{name}: networkx network_simplex on the {graph_label} (cap {nx_cap:g} s)")
            nx_flow = measure(lambda: nx_min_cost_flow(graph, capacity, obj), summarize, repeat=1, timeout=nx_cap)
            progress.remove_task(task)
            rows_out.append({**info, "solver": "nx network_simplex", "objective": obj.value, "input": graph_label, **(nx_flow or {"skipped": f"> {nx_cap:g} s"})})

            slots_used = int(np.minimum(capacity, np.bincount(graph.cols, minlength=m)).sum())
            nodes = n + slots_used
            estimate = None if mwm_reference is None else mwm_reference[1] * (nodes / mwm_reference[0]) ** 3
            if estimate is not None and estimate > nx_cap:
                nx_mwm = None
                mwm_note = f"skipped: > {nx_cap:g} s (O(n³) est. {estimate:,.0f} s)"
            else:
                task = step(f"{name}: networkx max_weight_matching on the slot-expanded {graph_label} (cap {nx_cap:g} s)")
                nx_mwm = measure(lambda: nx_max_weight_matching(graph, capacity, obj), summarize, repeat=1, timeout=nx_cap)
                progress.remove_task(task)
                mwm_note = None if nx_mwm else f"skipped: > {nx_cap:g} s"
                if nx_mwm and mwm_reference is None:
                    mwm_reference = (nodes, nx_mwm["seconds"])
            rows_out.append({**info, "solver": "nx max_weight_matching", "objective": obj.value, "input": f"{graph_label}, slots", **(nx_mwm or {"skipped": mwm_note})})

            task = step(f"{name}: greedy baseline (incl. scoring)")
            greedy = measure(lambda: greedy_match(pool.mentees, pool.mentors, MatchingPolicy(), pool.constraints), summarize_result, repeat=1 if n >= 10_000 else min(repeat, 3), timeout=600)
            progress.remove_task(task)
            rows_out.append({**info, "solver": "greedy", "objective": obj.value, "input": "profiles", **greedy})

            # ------------------------------------------------------------ verdicts for this instance
            best = ours[obj]["summary"]
            bound = best["upper_bound"]
            tol = 1e-6 * max(1.0, abs(best["total"])) + n / NX_SCALE
            verdict: dict[str, Any] = {
                "instance": name,
                "ours_seconds": ours[obj]["seconds"],
                "ours_gap": best["gap"],
                "ours_proven_optimal": best["proven_optimal"],
                "upper_bound": bound,
                "upper_bound_row_max": best["upper_bound_row_max"],
                "candidate_graph_gap": (bound - kernel["summary"]["total"]) / bound if bound else 0.0,
                "greedy_gap": (bound - greedy["summary"]["total"]) / bound if bound else 0.0,
                "greedy_unmatched": greedy["summary"]["unmatched"],
                "ours_unmatched": best["unmatched"],
            }
            for label, res in (("network_simplex", nx_flow), ("max_weight_matching", nx_mwm)):
                if res is None:
                    verdict[f"speedup_vs_{label}"] = {"at_least": nx_cap / kernel["seconds"], "same_optimum": None}
                else:
                    same = abs(res["summary"]["total"] - kernel["summary"]["total"]) <= tol
                    verdict[f"speedup_vs_{label}"] = {"ratio": res["seconds"] / kernel["seconds"], "same_optimum": same}
            if Objective.MAX_MATCHED_THEN_SCORE in ours:
                lex = ours[Objective.MAX_MATCHED_THEN_SCORE]["summary"]
                verdict["max_matched_then_score"] = {"matched": lex["matched"], "total": lex["total"], "seconds": ours[Objective.MAX_MATCHED_THEN_SCORE]["seconds"]}
            summary.append(verdict)

    # ------------------------------------------------------------------ the table
    table = Table(
        title="Matching: time, peak memory and optimum (one run, one machine)",
        caption="profiles = from participants to pairs, scoring included; all pairs / top-50 = the same candidate graph for "
        "every solver; slots = mentors expanded into capacity slots; time = median of the repeats (×n); "
        "gap vs bound = below our upper bound of the full optimum",
    )
    for col, just, wrap in (
        ("instance", "left", True),
        ("solver", "left", False),
        ("input", "left", False),
        ("objective", "left", False),
        ("time s", "right", False),
        ("peak MB", "right", False),
        ("total score", "right", False),
        ("matched", "right", False),
        ("gap vs bound", "right", False),
        ("note", "left", True),
    ):
        table.add_column(col, justify=just, no_wrap=not wrap)
    bounds = {v["instance"]: v["upper_bound"] for v in summary}
    last = None
    for row in rows_out:
        if last is not None and row["instance"] != last:
            table.add_section()
        label = row["instance"] if row["instance"] != last else ""
        if label.startswith("tight"):
            label = f"{row['instance']}×{row['mentors']:,}, {row['slots']:,} slots"
        last = row["instance"]
        objective = "score" if row["objective"] == Objective.MAX_TOTAL_SCORE.value else "matched→score"
        if "skipped" in row:
            table.add_row(label, row["solver"], row["input"], objective, "—", "—", "—", "—", "—", row["skipped"])
            continue
        s = row["summary"]
        ub = s.get("upper_bound") if row["solver"] == "ours solve()" else bounds[row["instance"]]
        gap = s.get("gap") if row["solver"] == "ours solve()" else ((ub - s["total"]) / ub if ub else None)
        note = []
        if row["solver"] == "ours solve()":
            st = s["stats"]
            note.append(f"{s['method']}, {'proven optimal' if s['proven_optimal'] else 'bound only'}")
            if st.get("pricing_rounds"):
                note.append(f"priced ×{st['pricing_rounds']} ({st['rescored_rows']} rows)")
        if s.get("unmatched"):
            note.append(f"{s['unmatched']} unmatched")
        runs = len(row["times"])
        table.add_row(
            label,
            row["solver"],
            row["input"],
            objective,
            fmt_s(row["seconds"]) + (f" (×{runs})" if runs > 1 else ""),
            f"{row['peak_mb']:.0f}",
            f"{s['total']:,.3f}",
            f"{s['matched']:,}",
            fmt_gap(gap),
            "; ".join(note),
        )
    console.print(table)

    # ------------------------------------------------------------------ ratios and aims
    console.print("\n[bold]Speed-up and gaps[/] (gaps against our upper bound of the full optimum; speed-ups on the same graph)")
    for v in summary:
        parts = []
        for label in ("network_simplex", "max_weight_matching"):
            sp = v[f"speedup_vs_{label}"]
            if "ratio" in sp:
                parts.append(f"{sp['ratio']:,.0f}× vs {label} ({'same optimum' if sp['same_optimum'] else 'DIFFERENT optimum'})")
            else:
                parts.append(f"≥ {sp['at_least']:,.0f}× vs {label} (it did not finish)")
        console.print(
            f"  {v['instance']}: " + "; ".join(parts) + f"; top-{K}/full-graph optimum gap {fmt_gap(v['candidate_graph_gap'])}, "
            f"greedy gap {fmt_gap(v['greedy_gap'])} with {v['greedy_unmatched']} unmatched (ours: {v['ours_unmatched']}); "
            f"row-max bound {v['upper_bound_row_max']:,.1f} vs dual bound {v['upper_bound']:,.1f}"
        )
        if "max_matched_then_score" in v:
            lx = v["max_matched_then_score"]
            console.print(f"    max_matched_then_score: {lx['matched']:,} matched, total {lx['total']:,.3f} in {fmt_s(lx['seconds'])} s")

    by_name = {v["instance"]: v for v in summary}
    mid, big = by_name["1,500×3,000"], by_name["10,000×20,000"]
    finished = [
        (v["instance"], label, v[f"speedup_vs_{label}"])
        for v in summary
        for label in ("network_simplex", "max_weight_matching")
        if "ratio" in v[f"speedup_vs_{label}"]
    ]
    aims = [
        {
            "aim": f"1,500×3,000 incl. scoring < {AIM_MID_S} s, exact optimum",
            "measured": f"{fmt_s(mid['ours_seconds'])} s, {'proven optimal' if mid['ours_proven_optimal'] else 'not proven'}",
            "met": mid["ours_seconds"] < AIM_MID_S and mid["ours_proven_optimal"],
        },
        {
            "aim": f"10,000×20,000 incl. scoring < {AIM_BIG_S:g} s, within {100 * AIM_BIG_GAP:g} % of the full optimum",
            "measured": f"{fmt_s(big['ours_seconds'])} s, gap {fmt_gap(big['ours_gap'])}"
            + (" (proven optimal)" if big["ours_proven_optimal"] else ""),
            "met": big["ours_seconds"] < AIM_BIG_S and big["ours_gap"] <= AIM_BIG_GAP,
        },
        {
            "aim": f"≥ {AIM_SPEEDUP:g}× faster than networkx on the same input, same optimum",
            "measured": ", ".join(f"{name} {label} {sp['ratio']:,.0f}×{'' if sp['same_optimum'] else ' (optimum differs)'}" for name, label, sp in finished)
            or "networkx finished nowhere",
            "met": bool(finished) and all(sp["ratio"] >= AIM_SPEEDUP and sp["same_optimum"] for _, _, sp in finished),
        },
    ]
    console.print("\n[bold]Aims of issue 4[/]")
    for a in aims:
        mark = "[green]met[/]" if a["met"] else "[red]NOT met[/]"
        console.print(f"  {mark}: {a['aim']} — measured {a['measured']}")
    elapsed = time.perf_counter() - started
    charts = write_chart(rows_out)
    console.print(
        f"\nwhole run {elapsed:.0f} s; JSON: {OUT.relative_to(ROOT)}; chart: "
        + ", ".join(str(c.relative_to(ROOT)) for c in charts)
    )

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "quick": args.quick,
                "nx_cap_s": nx_cap,
                "environment": {
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "load_average_at_start": load,
                    "numpy": np.__version__,
                    "scipy": scipy.__version__,
                    "networkx": nx.__version__,
                },
                "rows": rows_out,
                "summary": summary,
                "aims": aims,
                "elapsed_s": elapsed,
            },
            indent=2,
            default=str,
        )
    )
    return 0


def write_chart(rows: list[dict[str, Any]]) -> list[Path]:
    """Seconds per solver and instance (log scale); solvers that did not
    finish are left out of their group and said so in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    instances = list(dict.fromkeys(r["instance"] for r in rows))
    solvers = list(dict.fromkeys(f"{r['solver']} ({r['input']})" for r in rows))
    figure = Figure(figsize=(13, 5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / max(len(solvers), 1)
    handles: list[Patch] = []
    for i, solver in enumerate(solvers):
        xs, ys = [], []
        for j, instance in enumerate(instances):
            for r in rows:
                if r["instance"] == instance and f"{r['solver']} ({r['input']})" == solver and r.get("seconds"):
                    xs.append(j + i * width)
                    ys.append(r["seconds"])
        color = f"C{i % 10}"
        axes.bar(xs, ys, width, color=color)
        handles.append(Patch(color=color, label=solver if ys else f"{solver}: did not finish"))
    axes.set_yscale("log")
    axes.set_xticks([j + 0.4 - width / 2 for j in range(len(instances))], instances)
    axes.set_ylabel("seconds (log scale; a missing bar did not finish)")
    axes.set_title("Matching: time to the optimum, this service's solver vs networkx and greedy")
    axes.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in ("svg", "png"):
        path = OUT.with_suffix(f".{fmt}")
        figure.savefig(path, format=fmt)
        written.append(path)
    return written


if __name__ == "__main__":
    raise SystemExit(main())
