"""Meta-train an agent on a task family (``metarl-train``, ``python train.py``).

    python train.py                                   # MAML-TRPO on 2D navigation (defaults)
    python train.py --config maml_trpo_halfcheetah_vel meta_iterations=50 seed=3
    python train.py --resume runs/<run>               # continue a stopped run
    python train.py --resume runs/<run> meta_iterations=200   # ... and extend it
    python train.py --config <preset> init_from=runs/<run> outer_lr=3e-4   # fine-tune a run

--config takes a preset name (configs/<name>.yaml) or a YAML file. Writes
``runs/<env>__<agent>__<seed>__<time>/``: config.yaml, TensorBoard events, progress.csv and
checkpoints/.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from metarl.checkpoint import CheckpointError
from metarl.config import ConfigError, load_config
from metarl.training import resume, run_name, train


class Terminated(Exception):
    """Raised in the main thread when the process receives SIGTERM."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="YAML preset (see configs/)")
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint"
    )
    parser.add_argument("--run-dir", help="write the run here instead of runs/<generated name>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    args = parser.parse_args(argv)
    try:
        if args.resume:
            if args.config:
                raise ConfigError("--resume uses the run's own config; --config cannot be combined with it")
            state, config, run_dir = resume(Path(args.resume), args.overrides)
        else:
            config = load_config(args.config, args.overrides)
            state = None
            run_dir = Path(args.run_dir) if args.run_dir else Path(config.run_root) / run_name(config)
    except (ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"run directory: {run_dir}")
    start = time.perf_counter()
    # SIGTERM (kill, a scheduler's preemption) stops the run as Ctrl-C does: `train` saves
    # the last completed iteration on the way out.
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        train(config, run_dir, state, progress=not args.no_progress)
    except CheckpointError as err:  # init_from names a missing or ill-fitting checkpoint
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as stop:
        print(
            f"\n{'terminated' if isinstance(stop, Terminated) else 'interrupted'}; the last completed "
            f"iteration is saved. Resume with: python train.py --resume {run_dir}",
            file=sys.stderr,
        )
        return 143 if isinstance(stop, Terminated) else 130
    print(f"done in {time.perf_counter() - start:.1f} s; evaluate with: python evaluate.py {run_dir}")
    print(f"watch with: tensorboard --logdir {run_dir.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
