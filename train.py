"""Meta-train an agent on a task family.

    python train.py                                   # MAML-TRPO on 2D navigation (defaults)
    python train.py --config configs/maml_trpo_navigation2d.yaml meta_iterations=50 seed=3
    python train.py --resume runs/<run>               # continue a stopped run
    python train.py --resume runs/<run> meta_iterations=200   # ... and extend it
    python train.py --config <preset> init_from=runs/<run> outer_lr=3e-4   # fine-tune a run

Writes ``runs/<env>__<agent>__<seed>__<time>/``: config.yaml, TensorBoard events,
progress.csv and checkpoints/.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
from pathlib import Path

from tqdm import tqdm

from agents import build
from metarl.checkpoint import (
    CheckpointError,
    checkpoint_file,
    load_policy_weights,
    load_run,
    run_dir_of,
    run_state,
    save_checkpoint,
)
from metarl.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    field_names,
    load_config,
    save_config,
)
from metarl.logger import Logger
from metarl.tasks import sample_train_tasks

# Keys a resumed run may change: how long it runs and where it samples, and how exactly the
# MAML-TRPO step computes its curvature (continuing a run with exact curvature is how one
# tests whether the approximation holds it back; docs/results.md, HalfCheetahDir).
RESUMABLE_KEYS = {
    "meta_iterations",
    "checkpoint_every",
    "sampler_backend",
    "num_workers",
    "ray_address",
    "curvature_fraction",
}


def run_name(config: TrainConfig) -> str:
    env_name = config.env_id.split("/")[-1]
    return f"{env_name}__{config.agent}__{config.seed}__{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: TrainConfig, run_dir: Path, resume_state: dict | None = None, progress: bool = True
) -> Path:
    """Meta-train for `config.meta_iterations` iterations in total; return the run directory.

    Raises `CheckpointError` before writing anything if `config.init_from` does not fit."""
    agent, family, sampler = build(config)
    start, env_steps = 0, 0
    if resume_state is not None:
        agent.load_state_dict(resume_state["agent"])
        start, env_steps = int(resume_state["iteration"]), int(resume_state["env_steps"])
    elif config.init_from is not None:
        try:
            source = checkpoint_file(Path(config.init_from))
            load_policy_weights(agent.policy, source)
        except CheckpointError:
            sampler.close()  # its worker processes are already running
            raise
        # the run's config names the file, not a run directory whose latest may change
        config = dataclasses.replace(config, init_from=str(source))
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    checkpoint_dir = run_dir / "checkpoints"
    logger = Logger(run_dir, resume_iteration=start if resume_state is not None else None)
    logger.hyperparameters(config.to_dict())
    completed, saved = start, start

    def checkpoint() -> None:
        nonlocal saved
        save_checkpoint(checkpoint_dir, run_state(completed, env_steps, agent.state_dict(), config))
        saved = completed

    bar = tqdm(
        range(start, config.meta_iterations),
        initial=start,
        total=config.meta_iterations,
        desc="meta-iterations",
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        with sampler:
            for iteration in bar:
                tasks = sample_train_tasks(family, config.meta_batch_size, config.seed, iteration)
                metrics = agent.train_step(tasks, iteration)
                env_steps += int(metrics["charts/iteration_env_steps"])
                completed = iteration + 1
                logger.record_many(metrics)
                logger.record("charts/env_steps", env_steps)
                logger.record("charts/iteration", completed)
                logger.dump(env_steps)
                bar.set_postfix(
                    pre=f"{metrics['meta/return_pre_adapt']:.1f}",
                    post=f"{metrics['meta/return_post_adapt']:.1f}",
                    steps_per_s=f"{metrics['charts/env_steps_per_s']:.0f}",
                )
                if completed % config.checkpoint_every == 0:
                    checkpoint()
    finally:
        # Nothing is lost on a crash or Ctrl-C: the last completed iteration is saved.
        if completed > saved or completed == start == 0:
            checkpoint()
        bar.close()
        logger.close()
    return run_dir


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
            state, saved = load_run(Path(args.resume))
            config = apply_overrides(saved, args.overrides)
            changed = {k for k in field_names() if getattr(config, k) != getattr(saved, k)}
            if changed - RESUMABLE_KEYS:
                raise ConfigError(
                    f"cannot change {sorted(changed - RESUMABLE_KEYS)} when resuming; "
                    f"only {sorted(RESUMABLE_KEYS)}"
                )
            if config.meta_iterations <= state["iteration"]:
                raise ConfigError(
                    f"the run already has {state['iteration']} of meta_iterations={config.meta_iterations}; "
                    f"pass meta_iterations=N with N > {state['iteration']} to extend it"
                )
            run_dir = run_dir_of(Path(args.resume))
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
