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

from agents import build
from metarl import evaluation
from metarl.checkpoint import CheckpointError, load_checkpoint, run_dir_of
from metarl.config import ConfigError, config_from_dict
from metarl.sampling import BACKENDS
from metarl.tasks import sample_test_tasks

# The MAML paper's MAML row (mean return after 0..3 steps), see shared/reference/PAPER_NUMBERS.md.
PAPER_MAML = {
    "metarl/Navigation2D-v0": [-40.41, -11.68, -3.33, -3.23],
    "metarl/HalfCheetahVel-v0": [-129.53, -78.57, -66.62, -60.78],
    "metarl/HalfCheetahDir-v0": [-50.69, 293.19, 313.48, 315.65],
    "metarl/AntVel-v0": [30.58, 96.74, 100.06, 101.41],
    "metarl/AntDir-v0": [8.66, 499.15, 500.68, 499.11],
}


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
    try:
        state = load_checkpoint(Path(args.run))
        config = config_from_dict(state["config"])
    except (ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
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
    with sampler:
        curve = agent.adaptation_curve(tasks, num_steps, inner_lrs, config.seed)
    summary = evaluation.summarize(curve, tasks)
    summary.update(
        env_id=config.env_id,
        agent=config.agent,
        checkpoint_iteration=int(state["iteration"]),
        episodes_per_task=config.episodes_per_task,
        inner_lrs=inner_lrs,
        task_seed=task_seed,
    )
    title = f"{config.env_id} {config.agent} (iteration {state['iteration']}, {num_tasks} test tasks)"
    print(title)
    print(evaluation.format_table(summary))
    reference = PAPER_MAML.get(config.env_id)
    if reference is not None:
        print(f"paper (MAML row): {reference}")
    evaluation.write_json(summary, out_dir / "evaluation.json")
    evaluation.plot_curve(summary, out_dir / "adaptation_curve.png", title, reference)
    written = [out_dir / "evaluation.json", out_dir / "adaptation_curve.png"]
    if (run_dir / "progress.csv").exists():
        training_title = f"{config.env_id} {config.agent} (seed {config.seed}): training"
        post_label = f"after {config.num_inner_steps} inner step{'s' if config.num_inner_steps != 1 else ''}"
        evaluation.plot_training(
            run_dir / "progress.csv", out_dir / "training_curve.png", training_title, post_label
        )
        written.append(out_dir / "training_curve.png")
    print("wrote " + ", ".join(str(p) for p in written))
    print(f"evaluation took {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
