"""Adapt a trained policy on held-out tasks and report the adaptation curve.

    python evaluate.py runs/<run>                     # 40 test tasks, 0..3 gradient steps
    python evaluate.py runs/<run> --tasks 100 --steps 5 --inner-lrs 0.1

Prints a table (mean return and standard error over tasks after each step), and writes
``evaluation.json`` (per step: mean, standard error, per-task returns),
``adaptation_curve.png`` and ``training_curve.png`` (pre/post-adaptation return against
environment steps) into the run directory (or --out).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents import RECURRENT_AGENTS, build, classical
from envs.bandit import BanditEnv
from envs.tabular_mdp import TabularMDPEnv
from metarl import evaluation, seeding
from metarl.checkpoint import CheckpointError, load_run, run_dir_of
from metarl.config import ConfigError, TrainConfig
from metarl.episodes import Episodes
from metarl.sampling import BACKENDS
from metarl.tasks import sample_test_tasks

# The MAML paper's rows (mean return after 0..3 steps; the oracle's single value), see
# shared/reference/PAPER_NUMBERS.md.
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

# The MDP baselines whose return per episode the adaptation plot draws beside RL2's.
MDP_CURVES = ("PSRL", "greedy")

# The RL2 paper's bandit table (total reward over n pulls, mean over 1000 bandits), by
# (n pulls, k arms); see shared/reference/PAPER_NUMBERS.md. OTS is not implemented here.
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


def paper_reference(config) -> tuple[str, list[float]] | None:
    """The paper's row to compare a run with, by what the run is: (label, returns) or None.

    No inner steps while training makes a run the paper's "pretrained" baseline (a policy
    trained on all tasks, adapted at test time); with the task in the observation as well,
    its "oracle".
    """
    if config.agent not in ("maml_trpo", "maml_ppo"):
        return None
    if config.num_inner_steps == 0 and config.env_kwargs.get("observe_task"):
        label, table = "paper (oracle)", PAPER_ORACLE
    elif config.num_inner_steps == 0:
        label, table = "paper (pretrained)", PAPER_PRETRAINED
    else:
        label, table = "paper (MAML)", PAPER_MAML
    return (label, table[config.env_id]) if config.env_id in table else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", help="run directory (or a checkpoint file)")
    parser.add_argument("--tasks", type=int, help="number of held-out tasks (default: config eval_tasks)")
    parser.add_argument("--steps", type=int, help="adaptation steps (default: config eval_steps)")
    parser.add_argument("--inner-lrs", help="comma-separated step sizes; the last repeats")
    parser.add_argument(
        "--task-seed",
        type=int,
        help="draw the held-out tasks of this seed (default: the run's), "
        "to compare runs of different seeds on the same tasks",
    )
    parser.add_argument("--backend", choices=list(BACKENDS), help="sampler backend")
    parser.add_argument("--out", help="directory for evaluation.json and the plot (default: the run)")
    args = parser.parse_args(argv)
    loaded = load_run_or_report(args.run)
    if loaded is None:
        return 2
    state, config = loaded
    if args.backend:
        config.sampler_backend = args.backend
    num_tasks = args.tasks or config.eval_tasks
    num_steps = config.eval_steps if args.steps is None else args.steps
    inner_lrs = [float(x) for x in args.inner_lrs.split(",")] if args.inner_lrs else config.eval_inner_lrs
    run_dir = run_dir_of(Path(args.run))
    out_dir = Path(args.out) if args.out else run_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    agent, family, sampler = build(config)
    agent.load_state_dict(state["agent"])
    task_seed = config.seed if args.task_seed is None else args.task_seed
    tasks = sample_test_tasks(family, num_tasks, task_seed)
    recurrent = config.agent in RECURRENT_AGENTS
    bandit = recurrent and isinstance(family, BanditEnv)
    trials = []  # a bandit agent's trials, to score its pulls by the chosen arms' means
    with sampler:
        inspect = trials.append if bandit else None
        curve = agent.adaptation_curve(tasks, num_steps, inner_lrs, config.seed, inspect=inspect)
    summary = evaluation.summarize(curve, tasks)
    step_label = "episode in trial" if recurrent else "gradient steps"
    if recurrent:  # RL2: rows are the episodes 1..K of each task's trial
        for row in summary["steps"]:
            row["step"] += 1
        agent_totals = curve.sum(0)  # [tasks]
        summary["trial_total"] = evaluation.mean_and_stderr(agent_totals)
        summary["baselines"] = classical_baselines(family, tasks, config, task_seed)
        for baseline in summary["baselines"].values():  # paired over tasks: the tasks' spread cancels
            baseline["agent_minus_this"] = evaluation.mean_and_stderr(
                agent_totals - np.asarray(baseline.pop("task_totals"))
            )
        if bandit:  # the same comparison without the rewards' own noise
            agent_expected = expected_trial_totals(trials[0])
            summary["expected_trial_total"] = evaluation.mean_and_stderr(agent_expected)
            for baseline in summary["baselines"].values():
                expected = np.asarray(baseline.pop("task_expected_totals"))
                baseline["expected"] = evaluation.mean_and_stderr(expected)
                baseline["agent_minus_this_expected"] = evaluation.mean_and_stderr(agent_expected - expected)
    summary.update(
        env_id=config.env_id,
        agent=config.agent,
        checkpoint_iteration=int(state["iteration"]),
        **(
            {"episodes_per_trial": config.episodes_per_trial}
            if recurrent
            else {"episodes_per_task": config.episodes_per_task}
        ),
        inner_lrs=inner_lrs,
        task_seed=task_seed,
    )
    title = f"{config.env_id} {config.agent} (iteration {state['iteration']}, {num_tasks} test tasks)"
    print(title)
    print(evaluation.format_table(summary, step_label))
    if recurrent:
        print(evaluation.format_baselines(config.agent, summary["trial_total"], summary["baselines"]))
    if bandit:
        print("\nScored by the chosen arms' means (the expected total; no reward noise):")
        print(
            evaluation.format_baselines(
                config.agent, summary["expected_trial_total"], summary["baselines"], expected=True
            )
        )
    references: dict[str, list[float]] = {}
    if paper := paper_reference(config):
        label, curve = paper
        print(f"{label}: {curve}")
        references = {label: curve}
    elif set(MDP_CURVES) <= summary.get("baselines", {}).keys():  # MDPs: the baselines' episode curves
        references = {
            f"{name} (same tasks)": summary["baselines"][name]["episode_means"] for name in MDP_CURVES
        }
    evaluation.write_json(summary, out_dir / "evaluation.json")
    evaluation.plot_curve(summary, out_dir / "adaptation_curve.png", title, references, step_label)
    written = [out_dir / "evaluation.json", out_dir / "adaptation_curve.png"]
    if (run_dir / "progress.csv").exists():
        training_title = f"{config.env_id} {config.agent} (seed {config.seed}): training"
        if recurrent:
            last = config.episodes_per_trial
            labels = (
                ("return of a trial", None)
                if last == 1
                else ("first episode of a trial", f"episode {last} of a trial")
            )
        else:
            steps = config.num_inner_steps
            labels = ("before adaptation", f"after {steps} inner step{'s' if steps != 1 else ''}")
        evaluation.plot_training(
            run_dir / "progress.csv", out_dir / "training_curve.png", training_title, *labels
        )
        written.append(out_dir / "training_curve.png")
    print("wrote " + ", ".join(str(p) for p in written))
    print(f"evaluation took {time.perf_counter() - start:.1f} s")
    return 0


def load_run_or_report(path: str) -> tuple[dict[str, Any], TrainConfig] | None:
    """`load_run` for a command line: (checkpoint state, config), or None after printing to
    stderr why the run cannot be read."""
    try:
        return load_run(Path(path))
    except (ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None


def held_out_trials(state: dict[str, Any], config: TrainConfig, num_tasks: int) -> tuple[list, Episodes]:
    """An RL2 run's trials on `num_tasks` of its held-out tasks, sampled as `main` samples
    them (the run's test tasks and EVAL_SAMPLING stream): (tasks, episodes [tasks,
    episodes_per_trial, horizon, ...])."""
    agent, family, sampler = build(config)
    agent.load_state_dict(state["agent"])
    tasks = sample_test_tasks(family, num_tasks, config.seed)
    played: list[Episodes] = []
    with sampler:
        agent.adaptation_curve(tasks, seed=config.seed, inspect=played.append)
    return tasks, played[0]


def expected_trial_totals(episodes) -> np.ndarray:
    """Each bandit trial's pulls scored by the chosen arms' means, summed: [tasks]."""
    num_tasks = len(episodes.tasks)
    arms = episodes.actions[..., 0].reshape(num_tasks, -1).numpy()
    mask = episodes.mask.reshape(num_tasks, -1).numpy()
    return classical.chosen_arm_means(episodes.tasks, arms, mask)


def classical_baselines(family, tasks: list, config, task_seed: int) -> dict:
    """The classical baselines of a bandit or tabular-MDP family on `tasks` ({} for others):
    {name: {"mean", "stderr", "parameter", "task_totals" [tasks], "episode_means"}} of the
    trial total, and for bandits "task_expected_totals" [tasks] (the chosen arms' means summed)."""
    seed = int(seeding.seed_sequence(task_seed, seeding.BASELINES).generate_state(1)[0])
    if isinstance(family, BanditEnv):  # only the bandit baselines have hyperparameters to tune
        tuning = family.sample_tasks(len(tasks), seeding.generator(task_seed, seeding.BASELINE_TUNING))
        pulls = min(family.num_pulls, config.horizon) * config.episodes_per_trial
        gaussian = family.arms == "gaussian"
        results = classical.bandit_baselines(tasks, tuning, pulls, seed, gaussian)
        return {
            name: {
                **evaluation.mean_and_stderr(r["totals"]),
                "parameter": r["parameter"],
                "task_totals": r["totals"],
                "task_expected_totals": r["expected_totals"],
            }
            for name, r in results.items()
        }
    if isinstance(family, TabularMDPEnv):
        length = min(family.episode_length, config.horizon)
        results = classical.mdp_baselines(tasks, config.episodes_per_trial, length, seed)
        summaries = {}
        for name, r in results.items():
            totals = r["episode_returns"].sum(0)  # [tasks]
            summaries[name] = {
                **evaluation.mean_and_stderr(totals),
                "parameter": None,
                "task_totals": totals,
                "episode_means": r["episode_returns"].mean(1).tolist(),
            }
        return summaries
    return {}


if __name__ == "__main__":
    sys.exit(main())
