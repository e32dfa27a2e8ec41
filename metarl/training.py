"""The training loop: meta-iterations of an agent on its family, with logs and checkpoints.

`train` is what ``metarl.train``, ``train.py`` and ``metarl-train`` run. A run directory
``runs/<env>__<agent>__<seed>__<time>/`` holds config.yaml, TensorBoard events,
progress.csv and checkpoints/. A crash, Ctrl-C or SIGTERM saves the last completed
meta-iteration; a resumed run equals an uninterrupted one.

An update whose loss, gradient, parameters or metrics are not finite is refused: the agent's
state of before the meta-iteration is restored, a warning says what was not finite, and after
``max_refused_steps`` refusals in a row the run stops with `DivergedError`, its latest
checkpoint left as it was (checkpoints never hold a non-finite value).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from pathlib import Path

from tqdm import tqdm

from metarl.agent import Agent, build
from metarl.checkpoint import (
    CheckpointError,
    RunWriteError,
    check_writable,
    checkpoint_file,
    load_policy_weights,
    load_run,
    run_dir_of,
    run_state,
    save_checkpoint,
)
from metarl.config import ConfigError, TrainConfig, agent_keys, apply_overrides, field_names, save_config
from metarl.logger import Logger
from metarl.optim import DivergenceWarning, NonFiniteError, non_finite_entries
from metarl.tasks import Task, sample_train_tasks

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
    "curvature_tasks",
    "max_refused_steps",
    "worker_timeout_s",
    "allow_oversubscription",
}


class DivergedError(RuntimeError):
    """Training stopped after `max_refused_steps` non-finite updates in a row."""


def refusing_train_step(agent: Agent, tasks: list[Task], iteration: int) -> dict[str, float]:
    """`agent.train_step`, refused if anything in it is not finite: the agent's state of
    before is restored and the `NonFiniteError` naming the first such quantity (the agent's
    own, or a metric or state entry found after the step) raised."""
    state_before = copy.deepcopy(agent.state_dict())
    try:
        metrics = agent.train_step(tasks, iteration)
        for key, value in metrics.items():
            if not math.isfinite(value):
                raise NonFiniteError(f"the metric {key} is not finite ({value})")
        bad = non_finite_entries(agent.state_dict())
        if bad:
            raise NonFiniteError(f"the agent's state after the update is not finite ({', '.join(bad[:3])})")
    except NonFiniteError:
        agent.load_state_dict(state_before)
        raise
    return metrics


def run_name(config: TrainConfig) -> str:
    env_name = config.env_id.split("/")[-1]
    return f"{env_name}__{config.agent}__{config.seed}__{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: TrainConfig, run_dir: Path, resume_state: dict | None = None, progress: bool = True
) -> Path:
    """Meta-train for `config.meta_iterations` iterations in total; return the run directory.

    Raises `RunWriteError` before any compute if the run cannot write its files, and
    `CheckpointError` before writing anything if `config.init_from` does not fit."""
    check_writable(run_dir)
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
    logger.hyperparameters(agent_keys(config))
    completed, saved, refused = start, start, 0

    def kept_checkpoint(iteration: int) -> str:
        if iteration == 0:
            return "no checkpoint was written before it"
        return (
            f"the latest checkpoint, {checkpoint_dir}/iteration_{iteration:06d}.pt, holds finite parameters"
        )

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
    save_on_exit = True
    try:
        with sampler:
            for iteration in bar:
                tasks = sample_train_tasks(family, config.meta_batch_size, config.seed, iteration)
                steps_before = sampler.env_steps
                try:
                    metrics, refused = refusing_train_step(agent, tasks, iteration), 0
                except NonFiniteError as err:
                    refused, metrics = refused + 1, {}
                    if refused >= config.max_refused_steps:
                        save_on_exit = False  # the latest checkpoint stays the last good one
                        raise DivergedError(
                            f"{config.agent} stopped at iteration {iteration + 1}: {err}, "
                            f"{refused} updates in a row (max_refused_steps={config.max_refused_steps}), "
                            f"each refused; {kept_checkpoint(saved)}: lower the step sizes (outer_lr, "
                            "max_kl, inner_lr) and start again"
                        ) from err
                    warnings.warn(
                        f"{config.agent}, iteration {iteration + 1}: {err}; the update was refused and "
                        f"the parameters kept ({refused} in a row of max_refused_steps="
                        f"{config.max_refused_steps})",
                        DivergenceWarning,
                        stacklevel=2,
                    )
                env_steps += sampler.env_steps - steps_before
                completed = iteration + 1
                logger.record_many(metrics)
                logger.record("charts/env_steps", env_steps)
                logger.record("charts/iteration", completed)
                logger.record("charts/refused_updates", refused)
                logger.dump(env_steps)
                if metrics:
                    bar.set_postfix(
                        pre=f"{metrics['meta/return_pre_adapt']:.1f}",
                        post=f"{metrics['meta/return_post_adapt']:.1f}",
                        steps_per_s=f"{metrics['charts/env_steps_per_s']:.0f}",
                    )
                if completed % config.checkpoint_every == 0:
                    checkpoint()
    except RunWriteError:
        save_on_exit = False  # a checkpoint could not be written: trying again would only fail again
        raise
    finally:
        # Nothing is lost on a crash or Ctrl-C: the last completed iteration is saved.
        if save_on_exit and (completed > saved or completed == start == 0):
            checkpoint()
        bar.close()
        logger.close()
    return run_dir


def resume(path: Path, overrides: list[str] | dict | None = None) -> tuple[dict, TrainConfig, Path]:
    """(checkpoint state, config, run directory) to continue the run at `path` (a run
    directory or checkpoint file) with `overrides` of `RESUMABLE_KEYS` only.

    Raises `ConfigError` or `CheckpointError` saying what is wrong."""
    state, saved = load_run(Path(path))
    config = apply_overrides(saved, overrides or [])
    changed = {k for k in field_names() if getattr(config, k) != getattr(saved, k)}
    if changed - RESUMABLE_KEYS:
        raise ConfigError(
            f"cannot change {sorted(changed - RESUMABLE_KEYS)} when resuming; only {sorted(RESUMABLE_KEYS)}"
        )
    if config.meta_iterations <= state["iteration"]:
        raise ConfigError(
            f"the run already has {state['iteration']} of meta_iterations={config.meta_iterations}; "
            f"pass meta_iterations=N with N > {state['iteration']} to extend it"
        )
    return state, config, run_dir_of(Path(path))
