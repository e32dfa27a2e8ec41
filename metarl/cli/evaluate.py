"""Adapt a trained policy on held-out tasks and report the adaptation curve
(``metarl-evaluate``, ``python evaluate.py``).

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

from metarl import evaluation
from metarl.api import load
from metarl.checkpoint import CheckpointError, load_run, run_dir_of
from metarl.config import ConfigError, TrainConfig
from metarl.sampling import BACKENDS


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
        inner_lrs = [float(x) for x in args.inner_lrs.split(",")] if args.inner_lrs else None
        start = time.perf_counter()
        agent = load(args.run, **({"sampler_backend": args.backend} if args.backend else {}))
    except (ConfigError, CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    config = agent.config
    run_dir = run_dir_of(Path(args.run))
    out_dir = Path(args.out) if args.out else run_dir
    with agent.sampler:
        result = evaluation.evaluate(agent, args.tasks, args.steps, inner_lrs, args.task_seed)
    print(result.report())
    written = result.write(out_dir)
    if (run_dir / "progress.csv").exists():
        title = f"{config.env_id} {config.agent} (seed {config.seed}): training"
        evaluation.plot_training(
            run_dir / "progress.csv",
            out_dir / "training_curve.png",
            title,
            *evaluation.training_curve_labels(config),
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


if __name__ == "__main__":
    sys.exit(main())
