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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from metarl import evaluation
from metarl.api import load
from metarl.checkpoint import CheckpointError, load_run, run_dir_of
from metarl.cli import errors
from metarl.config import ConfigError, TrainConfig, check_value
from metarl.sampling import BACKENDS


def main(argv: list[str] | None = None) -> int:
    return errors.run(_main, argv)


def _checked(key: str, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An option's type: `parse`, then the config key `key`'s type and bounds (`check_value`)."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{text!r} is not valid for {key}: {err}") from err
        try:
            return check_value(key, value)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    return convert


def _step_sizes(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def make_parser() -> argparse.ArgumentParser:
    parser = errors.OneLineArgumentParser(
        prog="evaluate.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", help="run directory (or a checkpoint file)")
    parser.add_argument(
        "--tasks",
        type=_checked("eval_tasks", int),
        help="number of held-out tasks (default: config eval_tasks)",
    )
    parser.add_argument(
        "--steps", type=_checked("eval_steps", int), help="adaptation steps (default: config eval_steps)"
    )
    parser.add_argument(
        "--inner-lrs",
        type=_checked("eval_inner_lrs", _step_sizes),
        help="comma-separated step sizes; the last repeats",
    )
    parser.add_argument(
        "--task-seed",
        type=_checked("seed", int),
        help="draw the held-out tasks of this seed (default: the run's), "
        "to compare runs of different seeds on the same tasks",
    )
    parser.add_argument(
        "--split",
        choices=["test", "train"],
        default="test",
        help="evaluate on held-out tasks (default) or on training tasks (meta-train performance; "
        "written to <run>/meta_train/ unless --out)",
    )
    parser.add_argument("--backend", choices=list(BACKENDS), help="sampler backend")
    parser.add_argument("--out", help="directory for evaluation.json and the plot (default: the run)")
    parser.add_argument(errors.DEBUG_FLAG, action="store_true", help=errors.DEBUG_HELP)
    return parser


def _main(argv: list[str], debug: bool) -> int:
    args = make_parser().parse_args(argv)
    start = time.perf_counter()
    agent = load(args.run, **({"sampler_backend": args.backend} if args.backend else {}))
    config = agent.config
    run_dir = run_dir_of(Path(args.run))
    default_dir = run_dir / "meta_train" if args.split == "train" else run_dir
    out_dir = Path(args.out) if args.out else default_dir
    with agent.sampler:
        result = evaluation.evaluate(
            agent, args.tasks, args.steps, args.inner_lrs, args.task_seed, split=args.split
        )
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
