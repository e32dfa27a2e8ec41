"""Evaluation on held-out tasks: adaptation curves, classical baselines on the same tasks,
the papers' reference numbers, and their table, JSON and plot.

An agent supplies per-task returns after 0..K adaptation steps (MAML: gradient steps;
RL2: episodes within a trial); `evaluate` draws the held-out tasks, plays them and
summarises them; evaluate.py prints and writes what it returns.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metarl.agent import Agent, build, is_recurrent
from metarl.config import AgentConfig, TrainConfig
from metarl.episodes import Episodes
from metarl.registry import baselines_for
from metarl.tasks import family_of, sample_eval_tasks, sample_test_tasks


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


def success_rates(success: np.ndarray, tasks: list[dict], task_class: Any) -> list[dict[str, Any]]:
    """success: [steps, tasks, episodes] bool, whether each episode succeeded (an episode
    succeeds if its env reported ``info["success"]`` at some step).

    Per step: ``{"step", "success_rate", "stderr", "per_class": {class: rate},
    "task_success": [tasks]}``. A task's rate is the fraction of its episodes that
    succeeded; a class's is the mean over its tasks; ``success_rate`` is the mean over
    classes (each class counts once, as in Meta-World's evaluation), its standard error
    over tasks. `task_class(task)` names a task's class (None: one class, "all").
    """
    classes = [task_class(task) if task_class is not None else "all" for task in tasks]
    rows = []
    for step, step_success in enumerate(np.asarray(success, np.float64)):
        per_task = step_success.mean(-1)  # [tasks]
        per_class = {
            name: float(per_task[[c == name for c in classes]].mean()) for name in dict.fromkeys(classes)
        }
        rows.append(
            {
                "step": step,
                "success_rate": float(np.mean(list(per_class.values()))),
                "stderr": mean_and_stderr(per_task)["stderr"],
                "per_class": per_class,
                "task_success": [float(rate) for rate in per_task],
            }
        )
    return rows


def format_success(rows: list[dict[str, Any]], step_label: str) -> str:
    """The success table: one row per step, overall then per class (percent)."""
    classes = list(rows[0]["per_class"])
    header = f"{step_label:>16} | {'success %':>9} | {'s.e.':>5} | " + " | ".join(f"{c:>14}" for c in classes)
    lines = ["\nSuccess rate (an episode succeeds if info['success'] was 1 at some step):", header]
    lines.append("-" * len(header))
    for row in rows:
        per_class = " | ".join(f"{100 * row['per_class'][c]:>14.1f}" for c in classes)
        lines.append(
            f"{row['step']:>16d} | {100 * row['success_rate']:>9.1f} | "
            f"{100 * row['stderr']:>5.1f} | {per_class}"
        )
    return "\n".join(lines)


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
    from metarl.logger import progress_rows

    rows = progress_rows(progress_csv)
    steps = [float(row["charts/env_steps"]) for row in rows]

    def draw(axes) -> None:
        for key, label in (("meta/return_pre_adapt", pre_label), ("meta/return_post_adapt", post_label)):
            if label is None:
                continue
            axes.plot(steps, [float(row[key]) for row in rows], label=label)

    _save_plot(draw, path, title, "environment steps", "mean return (training tasks)")


# ---- evaluating an agent on held-out tasks ---------------------------------------------------


@dataclass
class Evaluation:
    """An agent's adaptation on held-out tasks, as `evaluate` returns it.

    mean_returns, stderrs: [steps] mean return over tasks and its standard error after each
    adaptation step (MAML: 0..K gradient steps) or in each episode of a trial (RL2);
    task_returns: [steps, tasks]; tasks: the held-out tasks; summary: everything evaluate.py
    prints and writes to evaluation.json (with the classical baselines for bandits and
    MDPs); references: label -> curve drawn beside the agent's in the plot; step_label: what
    a step is; title: a one-line description of the run.
    """

    mean_returns: list[float]
    stderrs: list[float]
    task_returns: np.ndarray
    tasks: list[dict]
    summary: dict[str, Any]
    references: dict[str, list[float]]
    step_label: str
    title: str

    def report(self) -> str:
        """The tables evaluate.py prints."""
        summary = self.summary
        lines = [self.title, format_table(summary, self.step_label)]
        if "success" in summary:
            lines.append(format_success(summary["success"], self.step_label))
        if "baselines" in summary:
            lines.append(format_baselines(summary["agent"], summary["trial_total"], summary["baselines"]))
        if "expected_trial_total" in summary:
            lines.append("\nScored by the chosen arms' means (the expected total; no reward noise):")
            lines.append(
                format_baselines(
                    summary["agent"], summary["expected_trial_total"], summary["baselines"], expected=True
                )
            )
        lines += [
            f"{label}: {curve}" for label, curve in self.references.items() if label.startswith("paper")
        ]
        return "\n".join(lines)

    def write(self, directory: Path) -> list[Path]:
        """Write evaluation.json and adaptation_curve.png into `directory`; their paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_json(self.summary, directory / "evaluation.json")
        plot_curve(
            self.summary, directory / "adaptation_curve.png", self.title, self.references, self.step_label
        )
        return [directory / "evaluation.json", directory / "adaptation_curve.png"]


def evaluate(
    agent: Agent,
    num_tasks: int | None = None,
    steps: int | None = None,
    inner_lrs: list[float] | None = None,
    task_seed: int | None = None,
    out: str | Path | None = None,
    split: str = "test",
) -> Evaluation:
    """What ``evaluate.py`` prints (``metarl.evaluate``): adapt `agent` on `num_tasks`
    held-out tasks of its run (default: its config's eval_tasks) and summarise: `steps`
    gradient steps with `inner_lrs` (MAML; defaults from the config), or one trial per task
    (RL2) next to the family's classical baselines on the same tasks. The result has
    ``.mean_returns`` and ``.stderrs`` per step, ``.task_returns`` [steps, tasks], ``.tasks``
    and ``.summary`` (the JSON). Writes evaluation.json and adaptation_curve.png into `out`
    if given, else nothing. task_seed: draw the held-out tasks of this seed instead of the run's.
    The title names the checkpoint's iteration (``agent.iteration``, set by ``metarl.load``).
    split: "train" evaluates on training tasks instead (meta-train performance)."""
    config = agent.config
    iteration = getattr(agent, "iteration", None)
    recurrent = is_recurrent(config)
    num_tasks = num_tasks or config.eval_tasks
    if not recurrent:  # gradient steps (an RL2 agent plays one trial per task)
        steps = config.eval_steps if steps is None else steps
        inner_lrs = list(inner_lrs or config.eval_inner_lrs)
    task_seed = config.seed if task_seed is None else task_seed
    family = family_of(config.env_id, config.env_kwargs)
    tasks = sample_eval_tasks(family, num_tasks, task_seed, split)
    baselines = baselines_for(family) if recurrent else None
    played: list[Episodes] = []  # an RL2 agent's trials, when the family scores them without noise
    keep = baselines is not None and baselines.expected_totals is not None
    reports_success = bool(getattr(family, "reports_success", False))
    success: list[np.ndarray] = []  # [tasks, episodes] per step (RL2: one [tasks, episodes of a trial])

    def inspect(_: int, __: Any, episodes: Episodes) -> None:
        if keep:
            played.append(episodes)
        if reports_success:
            success.append(episodes.success.numpy())

    curve = agent.adaptation_curve(
        tasks, steps, inner_lrs, config.seed, inspect=inspect if keep or reports_success else None
    )
    summary = summarize(curve, tasks)
    if reports_success:  # RL2: a "step" is an episode of the trial
        per_step = np.stack(success) if not recurrent else success[0].transpose(1, 0)[..., None]
        summary["success"] = success_rates(per_step, tasks, getattr(family, "task_class", None))
        for row in summary["success"] if recurrent else []:
            row["step"] += 1
    if recurrent:  # RL2: rows are the episodes 1..K of each task's trial
        for row in summary["steps"]:
            row["step"] += 1
        agent_totals = curve.sum(0)  # [tasks]
        summary["trial_total"] = mean_and_stderr(agent_totals)
        summary["baselines"] = classical_baselines(family, tasks, config, task_seed)
        for baseline in summary["baselines"].values():  # paired over tasks: the tasks' spread cancels
            baseline["agent_minus_this"] = mean_and_stderr(
                agent_totals - np.asarray(baseline.pop("task_totals"))
            )
        if keep:  # the same comparison without the rewards' own noise
            agent_expected = baselines.expected_totals(played[0])
            summary["expected_trial_total"] = mean_and_stderr(agent_expected)
            for baseline in summary["baselines"].values():
                expected = np.asarray(baseline.pop("task_expected_totals"))
                baseline["expected"] = mean_and_stderr(expected)
                baseline["agent_minus_this_expected"] = mean_and_stderr(agent_expected - expected)
    summary.update(
        env_id=config.env_id,
        agent=config.agent,
        checkpoint_iteration=iteration,
        **(
            {"episodes_per_trial": config.episodes_per_trial}
            if recurrent
            else {"episodes_per_task": config.episodes_per_task}
        ),
        inner_lrs=inner_lrs,
        task_seed=task_seed,
        split=split,
    )
    references: dict[str, list[float]] = {}
    if paper := paper_reference(config):
        references = {paper[0]: paper[1]}
    elif baselines is not None and set(baselines.curves) <= summary["baselines"].keys():
        references = {
            f"{name} (same tasks)": summary["baselines"][name]["episode_means"] for name in baselines.curves
        }
    result = Evaluation(
        mean_returns=[row["mean_return"] for row in summary["steps"]],
        stderrs=[row["stderr"] for row in summary["steps"]],
        task_returns=curve,
        tasks=tasks,
        summary=summary,
        references=references,
        step_label="episode in trial" if recurrent else "gradient steps",
        title=f"{config.env_id} {config.agent} (iteration {iteration}, {num_tasks} {split} tasks)",
    )
    if out is not None:
        result.write(Path(out))
    return result


def classical_baselines(
    family: Any, tasks: list[dict], config: TrainConfig | AgentConfig, task_seed: int
) -> dict:
    """The classical baselines registered for `family` played on `tasks` as `config`'s
    trials are ({} for a family without them; see `metarl.registry.FamilyBaselines`)."""
    baselines = baselines_for(family)
    if baselines is None:
        return {}
    return baselines.play(family, tasks, config.horizon, config.episodes_per_trial, task_seed)


def training_curve_labels(config: TrainConfig | AgentConfig) -> tuple[str, str | None]:
    """The labels of the pre- and post-adaptation lines of `plot_training` for `config`."""
    if is_recurrent(config):
        last = config.episodes_per_trial
        return (
            ("return of a trial", None)
            if last == 1
            else ("first episode of a trial", f"episode {last} of a trial")
        )
    steps = config.num_inner_steps
    return ("before adaptation", f"after {steps} inner step{'s' if steps != 1 else ''}")


def held_out_trials(
    state: dict[str, Any], config: TrainConfig, num_tasks: int
) -> tuple[list[dict], Episodes]:
    """An RL2 run's trials on `num_tasks` of its held-out tasks (checkpoint `state`), sampled
    as `evaluate` samples them (the EVAL_SAMPLING stream): (tasks, episodes [tasks,
    episodes_per_trial, horizon, ...])."""
    agent, family, sampler = build(config)
    agent.load_state_dict(state["agent"])
    tasks = sample_test_tasks(family, num_tasks, config.seed)
    played: list[Episodes] = []
    with sampler:
        agent.adaptation_curve(
            tasks, seed=config.seed, inspect=lambda _, __, episodes: played.append(episodes)
        )
    return tasks, played[0]


# The MAML paper's rows (mean return after 0..3 steps; the oracle's single value), see
# docs/reference_numbers.md.
PAPER_MAML = {
    "metarl/Navigation2D-v0": [-40.41, -11.68, -3.33, -3.23],
    "metarl/HalfCheetahVel-v0": [-129.53, -78.57, -66.62, -60.78],
    "metarl/HalfCheetahDir-v0": [-50.69, 293.19, 313.48, 315.65],
    "metarl/AntVel-v0": [30.58, 96.74, 100.06, 101.41],
    "metarl/AntDir-v0": [8.66, 499.15, 500.68, 499.11],
}
PAPER_PRETRAINED = {
    "metarl/Navigation2D-v0": [-40.81, -19.73, -11.72, -8.47],
    "metarl/HalfCheetahVel-v0": [-158.00, -135.39, -128.47, -133.61],
    "metarl/HalfCheetahDir-v0": [-43.03, -24.75, -12.85, 19.57],
    "metarl/AntVel-v0": [-1.83, 6.11, 8.47, 9.47],
    "metarl/AntDir-v0": [3.16, 1.27, 6.51, 6.86],
}
PAPER_ORACLE = {
    "metarl/Navigation2D-v0": [-2.29],
    "metarl/HalfCheetahVel-v0": [-54.47],
    "metarl/HalfCheetahDir-v0": [442.69],
    "metarl/AntVel-v0": [107.89],
    "metarl/AntDir-v0": [524.80],
}

# The RL2 paper's bandit table (total reward over n pulls, mean over 1000 bandits), by
# (n pulls, k arms); see docs/reference_numbers.md. OTS is not implemented here.
PAPER_RL2_BANDITS = {
    (10, 5): {
        "random": 5.0,
        "Gittins": 6.6,
        "Thompson": 5.7,
        "UCB1": 6.7,
        "epsilon-greedy": 6.6,
        "greedy": 6.6,
        "RL2": 6.7,
    },
    (10, 10): {
        "random": 5.0,
        "Gittins": 6.6,
        "Thompson": 5.5,
        "UCB1": 6.7,
        "epsilon-greedy": 6.6,
        "greedy": 6.6,
        "RL2": 6.7,
    },
    (10, 50): {
        "random": 5.1,
        "Gittins": 6.5,
        "Thompson": 5.2,
        "UCB1": 6.6,
        "epsilon-greedy": 6.5,
        "greedy": 6.5,
        "RL2": 6.8,
    },
    (100, 5): {
        "random": 49.9,
        "Gittins": 78.3,
        "Thompson": 74.7,
        "UCB1": 78.0,
        "epsilon-greedy": 75.4,
        "greedy": 74.8,
        "RL2": 78.7,
    },
    (100, 10): {
        "random": 49.9,
        "Gittins": 82.8,
        "Thompson": 76.7,
        "UCB1": 82.4,
        "epsilon-greedy": 77.4,
        "greedy": 77.1,
        "RL2": 83.5,
    },
    (100, 50): {
        "random": 49.8,
        "Gittins": 85.2,
        "Thompson": 64.5,
        "UCB1": 84.3,
        "epsilon-greedy": 78.3,
        "greedy": 78.0,
        "RL2": 84.9,
    },
}


def paper_reference(config: TrainConfig | AgentConfig) -> tuple[str, list[float]] | None:
    """The paper's row to compare a run with, by what the run is: (label, returns) or None.

    No inner steps while training makes a run the paper's "pretrained" baseline (a policy
    trained on all tasks, adapted at test time); with the task in the observation as well,
    its "oracle".
    """
    if is_recurrent(config):  # the MAML paper's rows compare gradient-based agents
        return None
    if config.num_inner_steps == 0 and config.env_kwargs.get("observe_task"):
        label, table = "paper (oracle)", PAPER_ORACLE
    elif config.num_inner_steps == 0:
        label, table = "paper (pretrained)", PAPER_PRETRAINED
    else:
        label, table = "paper (MAML)", PAPER_MAML
    return (label, table[config.env_id]) if config.env_id in table else None
