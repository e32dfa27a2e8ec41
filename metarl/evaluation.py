"""Adaptation curves on held-out tasks: summary, table, JSON and plot.

An agent supplies per-task returns after 0..K adaptation steps (MAML: gradient steps;
RL2: episodes within a trial); this module summarises and reports them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def summarize(task_returns: np.ndarray, tasks: list[dict]) -> dict[str, Any]:
    """task_returns: [steps, tasks] mean episode return per task after each step.

    Returns ``{"steps": [{"step", "mean_return", "stderr", "change_from_first",
    "task_returns"}], "tasks": [...]}``; the standard error is over tasks, and
    ``change_from_first`` is the paired change from step 0 on the same tasks ({"mean",
    "stderr"} of return after this step - return after step 0; None at step 0).
    """
    steps = []
    for step, returns in enumerate(task_returns):
        stats = mean_and_stderr(returns)
        steps.append(
            {
                "step": step,
                "mean_return": stats["mean"],
                "stderr": stats["stderr"],
                "change_from_first": mean_and_stderr(np.subtract(returns, task_returns[0])) if step else None,
                "task_returns": [float(r) for r in returns],
            }
        )
    return {"steps": steps, "tasks": tasks}


def mean_and_stderr(values: np.ndarray) -> dict[str, float]:
    """{"mean", "stderr"} of per-task values [tasks] (standard error over tasks)."""
    values = np.asarray(values, dtype=np.float64)
    stderr = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "stderr": stderr}


def format_baselines(
    agent: str, agent_total: dict[str, float], baselines: dict[str, dict], expected: bool = False
) -> str:
    """The agent's mean trial total next to each classical baseline's, on the same tasks, with
    the agent's paired difference from each (mean ± s.e. over tasks of agent - baseline).
    `expected`: the bandit totals scored by the chosen arms' means instead."""
    header = (
        f"{'policy':>24} | {'trial total':>11} | {'std. error':>10} | {'agent - this (paired)':>21} | tuned"
    )
    lines = [header, "-" * len(header)]
    rows = [(agent, agent_total, None)]
    for name, baseline in baselines.items():
        result = (
            {**baseline["expected"], "agent_minus_this": baseline["agent_minus_this_expected"]}
            if expected
            else baseline
        )
        rows.append((name, result, baseline.get("parameter")))
    for name, result, parameter in rows:
        tuned = "" if parameter is None else f"{parameter:g}"
        paired = result.get("agent_minus_this")
        difference = f"{paired['mean']:+.2f} ± {paired['stderr']:.2f}" if paired else ""
        lines.append(
            f"{name:>24} | {result['mean']:>11.2f} | {result['stderr']:>10.2f} | {difference:>21} | {tuned}"
        )
    return "\n".join(lines)


def format_table(summary: dict[str, Any], step_label: str = "gradient steps") -> str:
    """One row per step: mean return, its standard error, and the paired change from step 0
    (mean ± s.e. over the same tasks)."""
    header = (
        f"{step_label:>16} | {'mean return':>12} | {'std. error':>10} | {'change from first (paired)':>26}"
    )
    lines = [header, "-" * len(header)]
    for row in summary["steps"]:
        change = row.get("change_from_first")
        paired = f"{change['mean']:+.2f} ± {change['stderr']:.2f}" if change else ""
        lines.append(
            f"{row['step']:>16d} | {row['mean_return']:>12.2f} | {row['stderr']:>10.2f} | {paired:>26}"
        )
    return "\n".join(lines)


def write_json(summary: dict[str, Any], path: Path) -> None:
    Path(path).write_text(json.dumps(summary, indent=2))


def _save_plot(draw, path: Path, title: str, xlabel: str, ylabel: str) -> None:
    """Make a 5x3.5 in. figure, let `draw(axes)` fill it, label it and save it as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3.5))
    draw(axes)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=9)
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_curve(
    summary: dict[str, Any],
    path: Path,
    title: str,
    references: dict[str, list[float]] | None = None,
    step_label: str = "gradient steps",
) -> None:
    """Mean return with a standard-error band against adaptation steps, as PNG, with each of
    `references` (label -> mean return per step) drawn dashed beside it."""
    steps = [row["step"] for row in summary["steps"]]
    means = np.array([row["mean_return"] for row in summary["steps"]])
    errors = np.array([row["stderr"] for row in summary["steps"]])

    def draw(axes) -> None:
        axes.plot(steps, means, marker="o", label="metarl")
        axes.fill_between(steps, means - errors, means + errors, alpha=0.25)
        for label, reference in (references or {}).items():
            axes.plot(steps[: len(reference)], reference[: len(steps)], ls="--", marker="x", label=label)
        axes.set_xticks(steps)

    _save_plot(draw, path, title, step_label, "mean return (held-out tasks)")


def plot_training(
    progress_csv: Path,
    path: Path,
    title: str,
    pre_label: str = "before adaptation",
    post_label: str | None = "after adaptation",
) -> None:
    """Pre- and post-adaptation return against environment steps (from progress.csv), as PNG
    (for RL2: the return of the first and the last episode of the training trials; one line,
    post_label None, when a trial is one episode)."""
    import csv

    with open(progress_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    steps = [float(row["charts/env_steps"]) for row in rows]

    def draw(axes) -> None:
        for key, label in (("meta/return_pre_adapt", pre_label), ("meta/return_post_adapt", post_label)):
            if label is None:
                continue
            axes.plot(steps, [float(row[key]) for row in rows], label=label)

    _save_plot(draw, path, title, "environment steps", "mean return (training tasks)")
