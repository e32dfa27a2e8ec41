"""metarl's Python API, re-exported as ``metarl.train``, ``metarl.load`` and (from
`metarl.evaluation`) ``metarl.evaluate``:

    import metarl
    run = metarl.train("maml_trpo_navigation2d", meta_iterations=5, seed=3)
    agent = metarl.load(run.path)
    result = metarl.evaluate(agent, num_tasks=40, steps=3)
    policy = agent.adapt(env, steps=1)
    action = policy.act(observation)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from metarl.agent import Agent, build
from metarl.checkpoint import load_run
from metarl.config import ConfigError, TrainConfig, apply_overrides, load_config
from metarl.logger import progress_rows
from metarl.training import run_name
from metarl.training import train as train_loop


@dataclass
class Run:
    """A finished (or stopped) training run: its directory and config."""

    path: Path
    config: TrainConfig

    @property
    def metrics(self) -> list[dict[str, float]]:
        """The progress rows, one per meta-iteration, keyed by the progress.csv columns."""
        return [
            {key: float(value) for key, value in row.items() if value != ""}
            for row in progress_rows(self.path / "progress.csv")
        ]


def register_family(family: Callable[..., gym.Env]) -> str:
    """Register a family passed as a class or constructor under ``user/<name>-v0`` (replacing
    an earlier registration of that id); its id."""
    env_id = f"user/{getattr(family, '__name__', type(family).__name__)}-v0"
    gym.registry.pop(env_id, None)
    gym.register(env_id, entry_point=family)
    return env_id


def make_config(
    config: str | Path | TrainConfig | dict[str, Any] | None = None, **overrides: Any
) -> TrainConfig:
    """A validated config: a preset name or YAML path, a config object or a dict of keys
    (None: the defaults), with keyword `overrides` on top (the same flat keys as the CLI's).
    ``env_id`` may be a family's class or constructor: it is registered (`register_family`)."""
    if callable(overrides.get("env_id")):
        overrides["env_id"] = register_family(overrides["env_id"])
    if isinstance(config, TrainConfig):
        return apply_overrides(config, overrides)
    if isinstance(config, dict):
        return load_config(None, {**config, **overrides})
    if config is None or isinstance(config, (str, Path)):
        return load_config(config, overrides)
    raise ConfigError(
        f"a config is a preset name, a path, a TrainConfig or a dict, not {type(config).__name__}"
    )


def train(
    config: str | Path | TrainConfig | dict[str, Any] | None = None,
    *,
    run_dir: str | Path | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Run:
    """Meta-train as ``train.py`` does and return the run once it is done.

    config: a preset name (``"maml_trpo_navigation2d"``) or YAML path, a `TrainConfig`, a
    dict, or None for the defaults; overrides: config keys (``meta_iterations=5``). Writes
    the run directory (default ``<run_root>/<env>__<agent>__<seed>__<time>``) with
    config.yaml, TensorBoard events, progress.csv and checkpoints, showing a progress bar
    unless `progress` is False. On Ctrl-C the last completed iteration is saved and
    KeyboardInterrupt is raised on.
    """
    resolved = make_config(config, **overrides)
    path = Path(run_dir) if run_dir is not None else Path(resolved.run_root) / run_name(resolved)
    train_loop(resolved, path, progress=progress)
    return Run(path, load_config_of(path))


def load_config_of(run_path: Path) -> TrainConfig:
    """The resolved config a run directory records (config.yaml)."""
    return load_config(Path(run_path) / "config.yaml")


def load(path: str | Path, **overrides: Any) -> Agent:
    """The agent of a run directory (its latest checkpoint) or of a checkpoint file, with its
    sampler started. overrides: where it samples (``sampler_backend="local"``,
    ``num_workers``); other keys are the run's own. ``agent.iteration``: the checkpoint's."""
    state, config = load_run(Path(path))
    allowed = {"sampler_backend", "num_workers", "ray_address"}
    if set(overrides) - allowed:
        raise ConfigError(
            f"load() takes only {sorted(allowed)} as overrides, not {sorted(set(overrides) - allowed)}"
        )
    config = dataclasses.replace(config, **overrides)
    agent, _, _ = build(config)
    agent.load_state_dict(state["agent"])
    agent.iteration = int(state["iteration"])
    return agent
