"""Run configuration: one dataclass, YAML presets, ``key=value`` overrides, validation.

Precedence: dataclass defaults < ``--config`` YAML preset < command-line ``key=value``
overrides. Unknown keys, wrong types, unknown env ids and unknown agents raise
`ConfigError` with the valid choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration is invalid; the message says what is valid."""


@dataclass
class TrainConfig:
    """Everything that defines a run. Defaults: MAML-TRPO on 2D navigation (paper setup)."""

    # what to train
    env_id: str = "metarl/Navigation2D-v0"
    env_kwargs: dict = field(default_factory=dict)
    agent: str = "maml_trpo"
    seed: int = 1
    meta_iterations: int = 80
    # meta-batch
    meta_batch_size: int = 20  # tasks per meta-iteration
    episodes_per_task: int = 20  # episodes per task per adaptation step
    horizon: int = 100  # maximum episode length, steps
    # inner loop (adaptation)
    num_inner_steps: int = 1
    inner_lr: float = 0.1
    first_order: bool = False
    discount: float = 0.99
    gae_lambda: float = 1.0
    # policy
    hidden_sizes: list = field(default_factory=lambda: [64, 64])
    activation: str = "relu"
    init_std: float = 1.0
    # outer loop (TRPO)
    max_kl: float = 0.01
    cg_iterations: int = 10
    cg_damping: float = 1e-5
    # < 1: precondition the CG with the KL Hessian on this share of each task's episodes
    # (without the adaptation's Jacobian) and calibrate the step on the true KL
    curvature_fraction: float = 1.0
    line_search_backtrack_ratio: float = 0.8  # rllab's ConjugateGradientOptimizer
    line_search_max_backtracks: int = 15
    # outer loop (PPO, agent maml_ppo)
    ppo_epochs: int = 5  # Adam steps on each meta-batch, the adaptation recomputed for each
    ppo_clip: float = 0.2  # the probability ratio is clipped to [1 - clip, 1 + clip]
    outer_lr: float = 1e-3  # Adam step size
    # RL2 (agents rl2_ppo, rl2_trpo): one trial of episodes_per_trial episodes per task,
    # meta_batch_size trials per meta-iteration; a GRU policy and a GRU value of rnn_hidden_size
    episodes_per_trial: int = 2
    rnn_hidden_size: int = 256
    # the GRUs also read (previous action one-hot x previous reward): per-arm reward inputs
    rnn_reward_by_action: bool = False
    # the value GRU also reads the trial's task (a privileged critic: training's baseline only,
    # the policy never sees the task); the task's numbers from metarl.tasks.task_features
    rnn_privileged_value: bool = False
    # the input also carries the previous observation, and the GRUs read the (previous
    # observation, previous action) one-hot and it times the previous reward: per
    # state-action reward inputs for tabular MDPs
    rnn_state_action_inputs: bool = False
    # the action and value heads also read (observation x GRU features), a bilinear readout:
    # for one-hot observations, a linear head of its own per state, so a memory kept per
    # state-action pair can be read for the current state
    rnn_observation_heads: bool = False
    ppo_minibatches: int = 1  # minibatches of trials per PPO epoch (and per value epoch)
    # RL2: weight of the policy's mean entropy (nats per step) in the outer objective (PPO's
    # loss, TRPO's surrogate); with entropy_coef_final it falls linearly from entropy_coef at
    # the first meta-iteration to entropy_coef_final at the last (meta_iterations - 1; a
    # resumed run given a new meta_iterations follows the stretched schedule from there on)
    entropy_coef: float = 0.0
    entropy_coef_final: float | None = None  # noqa: UP007
    max_grad_norm: float = 0.5  # RL2-PPO: gradient norm clipping, for policy and value separately
    value_epochs: int = 5  # RL2-TRPO: Adam passes on the value after the policy's step
    # sampling
    rescale_actions: bool = True  # policy acts in [-1, 1], mapped onto the env's bounds (rllab)
    sampler_backend: str = "processes"  # processes | ray | local
    num_workers: int | None = None  # None: one per core  # noqa: UP007
    ray_address: str | None = None  # ray backend: the cluster to join; None starts a local one  # noqa: UP007
    # runs, checkpoints, evaluation
    run_root: str = "runs"
    checkpoint_every: int = 10  # meta-iterations between checkpoints (and always at the end)
    # start the networks from this checkpoint (or a run directory's latest) instead of a fresh
    # draw: fine-tuning a trained policy under a new config. The optimizer starts fresh and
    # the run counts its meta-iterations from 0. A run directory is recorded in the run's
    # config.yaml as its latest checkpoint file at the start.
    init_from: str | None = None  # noqa: UP007
    eval_tasks: int = 40
    eval_steps: int = 3
    eval_inner_lrs: list = field(default_factory=lambda: [0.1, 0.05])  # last one repeats

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _check_type(key: str, value: Any) -> Any:
    """Coerce ints to floats where a float is expected; raise ConfigError on a mismatch."""
    hints = typing.get_type_hints(TrainConfig)
    expected = hints[key]
    origin = typing.get_origin(expected)
    allowed: tuple = typing.get_args(expected) if origin in (typing.Union, types.UnionType) else (expected,)
    allowed = tuple(typing.get_origin(a) or a for a in allowed)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if bool not in allowed and isinstance(value, bool):
        raise ConfigError(f"config key {key!r} expects {_type_name(allowed)}, got {value!r}")
    if not isinstance(value, allowed):
        raise ConfigError(f"config key {key!r} expects {_type_name(allowed)}, got {value!r}")
    return value


def _type_name(types_: tuple) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types_)


def _apply(config: TrainConfig, updates: dict[str, Any], source: str) -> TrainConfig:
    names = field_names()
    for key, value in updates.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown config key {key!r} in {source}{hint}; valid keys: {', '.join(names)}")
        setattr(config, key, _check_type(key, value))
    return config


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but an exponent without a dot (3e-4) is a float, as in YAML 1.2
    (YAML 1.1 reads it as a string)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YamlLoader)


def presets() -> dict[str, Path]:
    """The presets shipped with metarl (the repository's configs/, installed as
    metarl.configs): name -> file."""
    from importlib import resources

    folder = resources.files("metarl.configs")
    return {Path(item.name).stem: Path(str(item)) for item in folder.iterdir() if item.name.endswith(".yaml")}


def preset_path(preset: str | Path) -> Path:
    """The file of `preset`: a path to a YAML file, or the name of a shipped preset
    (``maml_trpo_navigation2d``). ConfigError naming the presets if it is neither."""
    path = Path(preset)
    if path.is_file():
        return path
    shipped = presets()
    if str(preset) in shipped:
        return shipped[str(preset)]
    raise ConfigError(
        f"config {str(preset)!r} is neither a file nor a preset; presets: {', '.join(sorted(shipped))}"
    )


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["inner_lr=0.05", "hidden_sizes=[100,100]"]`` -> dict; values are parsed as YAML."""
    parsed: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        try:
            parsed[key.strip()] = _parse_yaml(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(
                f"override {item!r}: its value is not valid YAML ({' '.join(str(err).split())})"
            ) from err
    return parsed


def load_config(
    preset: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None
) -> TrainConfig:
    """Defaults, then the YAML `preset`, then `overrides`; validated."""
    config = TrainConfig()
    if preset is not None:
        path = preset_path(preset)
        try:
            data = _parse_yaml(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
        _apply(config, data, str(path))
    if overrides:
        updates = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        _apply(config, updates, "the overrides")
    validate(config)
    return config


def apply_overrides(config: TrainConfig, overrides: list[str] | dict[str, Any]) -> TrainConfig:
    """A validated copy of `config` with overrides (``key=value`` strings or a dict) applied."""
    updates = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides)
    updated = _apply(dataclasses.replace(config), updates, "the overrides")
    validate(updated)
    return updated


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a validated config from `TrainConfig.to_dict()` output (e.g. a checkpoint)."""
    config = _apply(TrainConfig(), dict(data), "the saved config")
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Check values that types cannot: env id, agent, backend, positive sizes."""
    import gymnasium as gym

    from metarl.registry import AGENTS
    from metarl.sampling import BACKENDS
    from metarl.tasks import registered_families

    if config.env_id not in gym.registry:
        raise ConfigError(
            f"unknown env id {config.env_id!r}; task families: {', '.join(registered_families())} "
            "(a family of your own: gym.register(id, entry_point=YourEnv) first)"
        )
    if config.agent not in AGENTS:
        raise ConfigError(f"unknown agent {config.agent!r}; choose from {', '.join(sorted(AGENTS))}")
    if config.sampler_backend not in BACKENDS:
        raise ConfigError(f"unknown sampler_backend {config.sampler_backend!r}; choose from {list(BACKENDS)}")
    if config.sampler_backend == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("sampler_backend 'ray' needs Ray: pip install 'metarl[ray]' (or pip install ray)")

    def require(condition: bool, message: str) -> None:
        if not condition:
            raise ConfigError(message)

    for key in (
        "meta_iterations",
        "meta_batch_size",
        "episodes_per_task",
        "horizon",
        "checkpoint_every",
        "eval_tasks",
        "cg_iterations",
        "line_search_max_backtracks",
        "ppo_epochs",
        "episodes_per_trial",
        "rnn_hidden_size",
        "ppo_minibatches",
    ):
        require(getattr(config, key) >= 1, f"{key} must be >= 1, got {getattr(config, key)}")
    for key in ("num_inner_steps", "eval_steps", "seed", "entropy_coef", "value_epochs"):
        require(getattr(config, key) >= 0, f"{key} must be >= 0, got {getattr(config, key)}")
    for key in ("inner_lr", "max_kl", "init_std", "ppo_clip", "outer_lr", "max_grad_norm"):
        require(getattr(config, key) > 0, f"{key} must be > 0, got {getattr(config, key)}")
    require(
        config.entropy_coef_final is None or config.entropy_coef_final >= 0,
        f"entropy_coef_final must be >= 0 or null, got {config.entropy_coef_final}",
    )
    require(
        AGENTS[config.agent].recurrent or (config.entropy_coef == 0 and not config.entropy_coef_final),
        f"entropy_coef and entropy_coef_final apply to the RL2 agents only, not {config.agent}",
    )
    for key in ("discount", "gae_lambda", "line_search_backtrack_ratio"):
        value = getattr(config, key)
        require(0 <= value <= 1, f"{key} must be in [0, 1], got {value}")
    require(config.cg_damping >= 0, f"cg_damping must be >= 0, got {config.cg_damping}")
    require(
        0 < config.curvature_fraction <= 1,
        f"curvature_fraction must be in (0, 1], got {config.curvature_fraction}",
    )
    require(
        config.num_workers is None or config.num_workers >= 1,
        f"num_workers must be >= 1 or null, got {config.num_workers}",
    )
    require(
        bool(config.hidden_sizes)
        and all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in config.hidden_sizes),
        f"hidden_sizes must be a non-empty list of positive ints, got {config.hidden_sizes}",
    )
    from metarl.policies import ACTIVATIONS

    require(
        config.activation in ACTIVATIONS,
        f"unknown activation {config.activation!r}; choose from {sorted(ACTIVATIONS)}",
    )
    require(
        bool(config.eval_inner_lrs)
        and all(
            isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0
            for lr in config.eval_inner_lrs
        ),
        f"eval_inner_lrs must be a non-empty list of positive step sizes, got {config.eval_inner_lrs}",
    )
    try:  # the family must build with these kwargs
        from metarl.tasks import family_of

        family_of(config.env_id, config.env_kwargs)
    except Exception as err:
        raise ConfigError(
            f"{config.env_id} cannot be built with env_kwargs={config.env_kwargs}: {err}"
        ) from err


def save_config(config: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
