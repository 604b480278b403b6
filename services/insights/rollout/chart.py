"""The rollout at a glance: one bar per country (dozens fit), pairs by
state stacked, the target as a tick, sessions held written beside."""

from __future__ import annotations

from typing import Any

from services.insights.charts import ImageFormat, new_figure, render

_SERIES = (("pairs_active", "active", "#55A868"), ("pairs_completed", "completed", "#4C72B0"),
           ("pairs_dissolved", "dissolved", "#C44E52"))


def rollout_chart(countries: list[dict[str, Any]], fmt: ImageFormat, title: str) -> bytes:
    rows = sorted(countries, key=lambda r: (r["region"], r["country"]), reverse=True)
    figure = new_figure(10, 1.5 + 0.35 * max(len(rows), 1))
    ax = figure.subplots()
    labels = [f"{r['country']} ({r['region']})" for r in rows]
    left = [0] * len(rows)
    for key, label, colour in _SERIES:
        values = [r[key] for r in rows]
        ax.barh(labels, values, left=left, label=label, color=colour)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.scatter([r["target_pairs"] for r in rows], labels, marker="|", s=300, color="black", label="target", zorder=3)
    for y, r in enumerate(rows):
        ax.annotate(f"{r['sessions_held']} sessions", (max(left[y], r["target_pairs"]), y),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_xlabel("pairs")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)  # beside the bars, never over them
    ax.margins(x=0.15)
    return render(figure, fmt)
