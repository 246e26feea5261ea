"""The human summary: one row per figure, one column per implementation, ratios and targets.

Ratios are the first implementation (ours) divided by each other one, for
every figure where a ratio means something; whether a bigger or smaller
figure is better is shown per row. With --repeat, a cell is the median over
the repeats that completed. Targets are those of issue 5 / SPEC §11 and are
checked for the first implementation only.
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ANY_DB = ("sqlite", "postgres")


@dataclass(frozen=True)
class Figure:
    scenario: str
    key: str
    #: "higher" or "lower" is better; None for counters, which get no ratio.
    better: str | None
    #: database -> (">=" or "<=", bound)
    targets: dict[str, tuple[str, float]] = field(default_factory=dict)

    def value(self, line: dict[str, Any]) -> float | None:
        value: Any = line
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value


def everywhere(op: str, bound: float) -> dict[str, tuple[str, float]]:
    return {db: (op, bound) for db in ANY_DB}


FIGURES = [
    Figure("drain", "jobs_per_s", "higher", {"postgres": (">=", 1000), "sqlite": (">=", 300)}),
    Figure("drain", "duplicates", None, everywhere("<=", 0)),
    Figure("drain", "not_executed", None, everywhere("<=", 0)),
    Figure("drain", "left_behind", None, everywhere("<=", 0)),
    Figure("drain", "results_unsuccessful", None, everywhere("<=", 0)),
    Figure("drain", "db_locked_errors", None, everywhere("<=", 0)),
    Figure("latency", "p50_ms", "lower", {"postgres": ("<=", 10)}),
    Figure("latency", "p95_ms", "lower", {"postgres": ("<=", 50)}),
    Figure("latency", "max_ms", "lower"),
    Figure("latency", "not_started", None),
    Figure("enqueue_single", "jobs_per_s", "higher", {"postgres": (">=", 1000)}),
    Figure("enqueue_single", "call_ms_p50", "lower"),
    Figure("enqueue_single_idle_worker", "jobs_per_s", "higher", {"postgres": (">=", 1000)}),
    Figure("enqueue_single_idle_worker", "call_ms_p50", "lower"),
    # "Never stalled by an idle worker", read as: no single call takes more than 100 ms.
    Figure("enqueue_single_idle_worker", "call_ms_max", "lower", {"sqlite": ("<=", 100)}),
    Figure("enqueue_bulk", "jobs_per_s", "higher", {"postgres": (">=", 20000)}),
    Figure("memory", "jobs_measured", None),
    Figure("memory", "after.total_mb", "lower"),
    # "Flat over 10,000 jobs", read as: at most 10% growth from after the warm-up to the end.
    Figure("memory", "growth_pct", None, everywhere("<=", 10)),
]

COMPARE = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Cell:
    """One implementation's figure: a number, or why there is none."""

    value: float | None
    status: str = "ok"
    #: Some run stopped at its time limit before all its jobs ran.
    limited: bool = False
    #: The worker exited on its own during some run.
    died: bool = False

    def show(self) -> str:
        if self.value is None:
            return self.status if self.status != "ok" else "-"
        return _number(self.value) + ("*" if self.limited else "") + ("!" if self.died else "")


def cell(figure: Figure, lines: list[dict[str, Any]]) -> Cell:
    """The median of the figure over the completed runs in ``lines``."""
    done = [line for line in lines if line["status"] == "ok"]
    if not done:
        return Cell(None, lines[0]["status"] if lines else "-")
    values = [value for value in map(figure.value, done) if value is not None]
    return Cell(
        statistics.median(values) if values else None,
        limited=any(line.get("finished") is False for line in done),
        died=any(line.get("worker_died") for line in done),
    )


def summary(lines: list[dict[str, Any]], labels: list[str], databases: list[str]) -> str:
    """The table as text, for the scenarios present in ``lines``."""
    base, others = labels[0], labels[1:]
    header = ["db", "scenario", "figure", *labels, *(f"{base}/{other}" for other in others), "better", "target", "met"]
    rows = [header]
    for db in databases:
        for figure in FIGURES:
            runs = [
                [
                    line
                    for line in lines
                    if (line["database"], line["scenario"], line["implementation"]) == (db, figure.scenario, label)
                ]
                for label in labels
            ]
            if not any(runs):
                continue
            cells = [cell(figure, runs_of_label) for runs_of_label in runs]
            ratios = [_ratio(figure, cells[0], other) for other in cells[1:]]
            target, met = _target(figure, db, cells[0])
            rows.append(
                [db, figure.scenario, figure.key, *(c.show() for c in cells), *ratios, figure.better or "", target, met]
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    text = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    text.insert(1, "  ".join("-" * width for width in widths))
    text += _footnote(
        "* stopped at the time limit before all jobs ran", lines, lambda line: line.get("finished") is False
    )
    text += _footnote("! the worker exited on its own during", lines, lambda line: line.get("worker_died"))
    text += _footnote("harness error (see the JSON line)", lines, lambda line: line["status"] == "error")
    return "\n".join(text)


def _footnote(title: str, lines: list[dict[str, Any]], applies: Callable[[dict[str, Any]], Any]) -> list[str]:
    runs = sorted(
        {f"{line['implementation']}/{line['database']}/{line['scenario']}" for line in lines if applies(line)}
    )
    return [f"{title}: {', '.join(runs)}"] if runs else []


def _number(number: float) -> str:
    if abs(number) >= 100 or float(number).is_integer():
        return f"{number:,.0f}"
    return f"{number:.1f}" if abs(number) >= 10 else f"{number:.2f}"


def _ratio(figure: Figure, ours: Cell, theirs: Cell) -> str:
    if figure.better is None or ours.value is None or not theirs.value:
        return ""
    ratio = ours.value / theirs.value
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def _target(figure: Figure, db: str, ours: Cell) -> tuple[str, str]:
    if db not in figure.targets:
        return "", ""
    op, bound = figure.targets[db]
    if ours.value is None:
        return f"{op} {_number(bound)}", "?"
    return f"{op} {_number(bound)}", "yes" if COMPARE[op](ours.value, bound) else "NO"
