"""Run configuration: typed sections, layered YAML presets, ``key=value`` overrides, checks.

A config is split by concern (`RunConfig`, `SamplerConfig`, `MAMLConfig`, `TRPOConfig`,
`PPOConfig`, `RL2Config`, `EvalConfig`); `TrainConfig` holds their keys side by side, so
keys keep flat names (``inner_lr``, ``hidden_sizes``) in Python, presets and on the CLI.
Each agent registers the keys it reads (`metarl.registry`): setting another is an error,
and a run's config.yaml holds only the keys its agent reads.

Precedence: defaults < the preset's bases < the preset < overrides. A preset is a YAML
file of keys; ``base: <name or list>`` layers it on presets of configs/base/ (or other
files), and ``variants: {suffix: {keys}}`` makes one preset per variant, named
``<file>_<suffix>``. Unknown keys, wrong types, unknown env ids and unknown agents raise
`ConfigError` with the valid choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration is invalid; the message says what is valid."""


@dataclass(frozen=True)
class Bound:
    """The values a number key may take: at least `low` (more than `low` if `low_open`), at
    most `high` if given, or null if `null_ok`."""

    low: float
    high: float | None = None
    low_open: bool = False
    null_ok: bool = False

    def check(self, key: str, value: float | None) -> None:
        if value is None and self.null_ok:
            return
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number ({self}), got {value}")
        above = value > self.low if self.low_open else value >= self.low
        if not (above and (self.high is None or value <= self.high)):
            raise ConfigError(f"{key} must be {self}{' or null' if self.null_ok else ''}, got {value}")

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"


AT_LEAST_0, AT_LEAST_1, POSITIVE = Bound(0), Bound(1), Bound(0, low_open=True)
UNIT, SHARE = Bound(0, 1), Bound(0, 1, low_open=True)  # [0, 1] and (0, 1]
AT_LEAST_0_OR_NULL, AT_LEAST_1_OR_NULL = Bound(0, null_ok=True), Bound(1, null_ok=True)


def bounded(default: Any, bound: Bound) -> Any:
    """A config field with `default`, checked against `bound` by `validate`."""
    return field(default=default, metadata={"bound": bound})


@dataclass
class RunConfig:
    """What to train and the run around it.

    Args:
        env_id: gymnasium id of the task family (any id registered with the protocol of metarl.tasks)
        env_kwargs: keyword arguments of the family's constructor
        agent: the agent (maml_trpo, maml_ppo, rl2_ppo, rl2_trpo)
        seed: the run's seed; every random stream derives from it (metarl.seeding)
        meta_iterations: meta-iterations in all (a resumed run may extend it)
        meta_batch_size: tasks (MAML) or trials (RL2) per meta-iteration
        horizon: maximum episode length, steps
        discount: discount factor of returns and advantages
        gae_lambda: GAE lambda of the advantages
        init_std: initial standard deviation of a Gaussian policy
        run_root: folder of the run directories
        checkpoint_every: meta-iterations between checkpoints (and always at the end)
        max_refused_steps: consecutive meta-iterations whose update is refused as not finite
            (the parameters kept as they were) before the run stops with an error
        init_from: start the networks from this checkpoint or run directory (fresh optimizer, iteration 0)
    """

    env_id: str = "metarl/Navigation2D-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent: str = "maml_trpo"
    seed: int = bounded(1, AT_LEAST_0)
    meta_iterations: int = bounded(80, AT_LEAST_1)
    meta_batch_size: int = bounded(20, AT_LEAST_1)
    horizon: int = bounded(100, AT_LEAST_1)
    discount: float = bounded(0.99, UNIT)
    gae_lambda: float = bounded(1.0, UNIT)
    init_std: float = bounded(1.0, POSITIVE)
    run_root: str = "runs"
    checkpoint_every: int = bounded(10, AT_LEAST_1)
    max_refused_steps: int = bounded(3, AT_LEAST_1)
    init_from: str | None = None  # noqa: UP007


@dataclass
class SamplerConfig:
    """Where and how episodes are sampled.

    Args:
        rescale_actions: the policy acts in [-1, 1], mapped onto the env's action bounds (rllab)
        sampler_backend: processes (one worker per core), ray, or local (in-process)
        num_workers: sampler workers; null: one per core
        allow_oversubscription: allow num_workers above this machine's core count
        worker_timeout_s: seconds a sampler worker may take to answer one request, beyond 1 ms
            per env step of the request, before it is stopped and reported
        ray_address: the Ray cluster to join (ray backend); null starts a local one
    """

    rescale_actions: bool = True
    sampler_backend: str = "processes"
    num_workers: int | None = bounded(None, AT_LEAST_1_OR_NULL)  # noqa: UP007
    allow_oversubscription: bool = False
    worker_timeout_s: float = bounded(30.0, POSITIVE)
    ray_address: str | None = None  # noqa: UP007


@dataclass
class MAMLConfig:
    """MAML: the inner loop and the MLP policy (agents maml_trpo, maml_ppo).

    Args:
        episodes_per_task: episodes per task per adaptation step
        num_inner_steps: inner policy-gradient steps while training
        inner_lr: step size of the inner steps
        first_order: drop the second-order terms of the meta-gradient
        hidden_sizes: hidden layer widths of the policy MLP
        activation: hidden activation (relu or tanh)
    """

    episodes_per_task: int = bounded(20, AT_LEAST_1)
    num_inner_steps: int = bounded(1, AT_LEAST_0)
    inner_lr: float = bounded(0.1, POSITIVE)
    first_order: bool = False
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "relu"


@dataclass
class TRPOConfig:
    """The TRPO outer step (agents maml_trpo, rl2_trpo).

    Args:
        max_kl: trust region: the mean KL bound of a step
        cg_iterations: conjugate-gradient iterations
        cg_damping: damping added to the KL Hessian
        curvature_fraction: share of each task's episodes (RL2: of the trials) in the CG's
            curvature (< 1: MAML uses F alone as a preconditioner, the step calibrated on the
            true KL)
        curvature_tasks: share of the meta-batch's tasks in the CG's exact curvature J^T F J
            (< 1: an unbiased estimate on fewer tasks, each with its own inner episodes, the
            step calibrated on the true KL; 1: exact on every task)
        line_search_backtrack_ratio: step shrink factor of the backtracking line search
        line_search_max_backtracks: backtracks before the step is rejected
    """

    max_kl: float = bounded(0.01, POSITIVE)
    cg_iterations: int = bounded(10, AT_LEAST_1)
    cg_damping: float = bounded(1e-5, AT_LEAST_0)
    curvature_fraction: float = bounded(1.0, SHARE)
    curvature_tasks: float = bounded(0.5, SHARE)
    line_search_backtrack_ratio: float = bounded(0.8, UNIT)
    line_search_max_backtracks: int = bounded(15, AT_LEAST_1)


@dataclass
class PPOConfig:
    """The PPO outer step and Adam (agents maml_ppo, rl2_ppo; rl2_trpo's value uses outer_lr).

    Args:
        ppo_epochs: Adam passes over each meta-batch (MAML: the adaptation recomputed in each)
        ppo_clip: the probability ratio is clipped to [1 - clip, 1 + clip]
        outer_lr: Adam step size
    """

    ppo_epochs: int = bounded(5, AT_LEAST_1)
    ppo_clip: float = bounded(0.2, POSITIVE)
    outer_lr: float = bounded(1e-3, POSITIVE)


@dataclass
class RL2Config:
    """RL2: trials, the GRU policy and value, and their optimisation (agents rl2_ppo, rl2_trpo).

    Args:
        episodes_per_trial: episodes of one trial on one task (the hidden state runs through them)
        rnn_hidden_size: GRU width of policy and value
        rnn_reward_by_action: the GRUs also read (previous action one-hot x previous reward)
        rnn_privileged_value: the value GRU also reads the trial's task (training's baseline only)
        rnn_state_action_inputs: the GRUs also read per (previous observation, action) reward
            inputs (tabular MDPs)
        rnn_observation_heads: the heads also read (observation x GRU features): a readout per one-hot state
        ppo_minibatches: minibatches of trials per PPO epoch (and per value epoch)
        entropy_coef: weight of the policy's mean entropy (nats per step) in the outer objective
        entropy_coef_final: with it, the weight falls linearly to this value at the last iteration
        max_grad_norm: RL2-PPO's gradient norm clipping, for policy and value separately
        value_epochs: RL2-TRPO's Adam passes on the value after the policy's step
    """

    episodes_per_trial: int = bounded(2, AT_LEAST_1)
    rnn_hidden_size: int = bounded(256, AT_LEAST_1)
    rnn_reward_by_action: bool = False
    rnn_privileged_value: bool = False
    rnn_state_action_inputs: bool = False
    rnn_observation_heads: bool = False
    ppo_minibatches: int = bounded(1, AT_LEAST_1)
    entropy_coef: float = bounded(0.0, AT_LEAST_0)
    entropy_coef_final: float | None = bounded(None, AT_LEAST_0_OR_NULL)  # noqa: UP007
    max_grad_norm: float = bounded(0.5, POSITIVE)
    value_epochs: int = bounded(5, AT_LEAST_0)


@dataclass
class EvalConfig:
    """Evaluation on held-out tasks (evaluate.py, metarl.evaluate).

    Args:
        eval_tasks: held-out tasks
        eval_steps: adaptation steps evaluated (MAML)
        eval_inner_lrs: step sizes of the evaluation's inner steps; the last one repeats (MAML)
    """

    eval_tasks: int = bounded(40, AT_LEAST_1)
    eval_steps: int = bounded(3, AT_LEAST_0)
    eval_inner_lrs: list[float] = field(default_factory=lambda: [0.1, 0.05])


SECTIONS: dict[str, type] = {
    "run": RunConfig,
    "sampler": SamplerConfig,
    "maml": MAMLConfig,
    "trpo": TRPOConfig,
    "ppo": PPOConfig,
    "rl2": RL2Config,
    "evaluation": EvalConfig,
}


@dataclass
class TrainConfig(EvalConfig, RL2Config, PPOConfig, TRPOConfig, MAMLConfig, SamplerConfig, RunConfig):
    """Everything that defines a run, flat: the sections' keys side by side (each section
    documents its own). Defaults: MAML-TRPO on 2D navigation (the MAML paper's setup)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def section_keys(*sections: str) -> frozenset[str]:
    """The config keys of the named sections."""
    return frozenset(f.name for name in sections for f in dataclasses.fields(SECTIONS[name]))


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
    _check_read(str(updates.get("agent", config.agent)), updates, source)
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


def _yaml_problem(err: yaml.YAMLError) -> str:
    """What is wrong in a YAML text and where, without PyYAML's '<unicode string>' name."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context = getattr(err, "context", None)
    return f"{where}{problem}{f' ({context})' if context else ''}"


def _unread(agent: str, keys: Iterable[str]) -> list[str]:
    """The config keys among `keys` that `agent` does not read (none for an unknown agent:
    validate() names the agents; unknown keys are _apply's to report)."""
    from metarl.registry import AGENTS

    if agent not in AGENTS:
        return []
    return [key for key in keys if key in field_names() and key not in AGENTS[agent].reads]


def _check_read(agent: str, updates: dict[str, Any], source: str) -> None:
    """ConfigError if `updates` sets a config key that `agent` does not read."""
    from metarl.registry import AGENTS

    unread = _unread(agent, updates)
    if unread:
        pronoun = "it" if len(unread) == 1 else "them"
        listed = ", ".join(key for key in field_names() if key in AGENTS[agent].reads)
        raise ConfigError(
            f"{', '.join(unread)} in {source}: agent {agent} does not read {pronoun}; its keys: {listed}"
        )


def _read_by(agent: str, keys: dict[str, Any]) -> dict[str, Any]:
    """`keys` less the config keys that `agent` does not read."""
    unread = _unread(agent, keys)
    return {key: value for key, value in keys.items() if key not in unread}


def _preset_folder() -> Path:
    from importlib import resources

    return Path(str(resources.files("metarl.configs")))


def _read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file holding a mapping; ConfigError naming the file otherwise."""
    try:
        data = _parse_yaml(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(err)}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    return data


def presets() -> dict[str, tuple[Path, str | None]]:
    """The presets shipped with metarl (the repository's configs/, installed as
    metarl.configs): name -> (file, variant or None)."""
    found: dict[str, tuple[Path, str | None]] = {}
    for path in sorted(_preset_folder().glob("*.yaml")):
        variants = _read_yaml(path).get("variants")
        if isinstance(variants, dict):
            found.update({f"{path.stem}_{suffix}": (path, str(suffix)) for suffix in variants})
        else:
            found[path.stem] = (path, None)
    return found


def preset_path(preset: str | Path) -> tuple[Path, str | None]:
    """(file, variant) of `preset`: a path to a YAML file, or the name of a shipped preset
    (``maml_trpo_navigation2d``, ``rl2_trpo_bandit_k5_n10``; ``configs/<name>.yaml`` names it
    too). ConfigError naming the presets if it is neither."""
    path = Path(preset)
    if path.is_file():
        return path, None
    shipped = presets()
    name = path.stem if path.suffix == ".yaml" else str(preset)
    if name in shipped:
        return shipped[name]
    raise ConfigError(
        f"config {str(preset)!r} is neither a file nor a preset; presets: {', '.join(sorted(shipped))}"
    )


def preset_keys(preset: str | Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keys of `preset` with its bases layered under them (later bases win over earlier)."""
    path, variant = preset_path(preset)
    if str(path) in seen:
        raise ConfigError(f"{path} is its own base (through {' -> '.join(seen)})")
    data = _read_yaml(path)
    bases = data.pop("base", [])
    variants = data.pop("variants", None)
    keys: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases:
        base_file = _preset_folder() / "base" / f"{base}.yaml"
        keys.update(preset_keys(base_file if base_file.is_file() else base, (*seen, str(path))))
    keys.update(data)
    if variant is not None:
        if not isinstance(variants, dict) or not isinstance(variants.get(variant), dict):
            raise ConfigError(f"{path} has no variant {variant!r}")
        keys.update(variants[variant])
    elif variants is not None:
        raise ConfigError(f"{path} holds variants: name one, e.g. {path.stem}_{next(iter(variants))}")
    return keys


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
            problem = _yaml_problem(err)
            raise ConfigError(f"override {item!r}: its value is not valid YAML ({problem})") from err
    return parsed


def load_config(
    preset: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None
) -> TrainConfig:
    """Defaults, then the YAML `preset`, then `overrides`; validated."""
    config = TrainConfig()
    updates = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides or {})
    if preset is not None:
        keys = preset_keys(preset)
        if "agent" in updates:  # another agent on the preset: it keeps the keys that agent reads
            keys = {**_read_by(str(updates["agent"]), keys), "agent": updates["agent"]}
        _apply(config, keys, str(preset))
    if updates:
        _apply(config, updates, "the overrides")
    validate(config)
    return config


def apply_overrides(config: TrainConfig, overrides: list[str] | dict[str, Any]) -> TrainConfig:
    """A validated copy of `config` with overrides (``key=value`` strings or a dict) applied."""
    updates = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides)
    updated = _apply(dataclasses.replace(config), updates, "the overrides")
    validate(updated)
    return updated


# Keys added after runs had been saved, each with the value that the runs saved before it ran
# with: such a run resumes as it ran, not with the key's current default.
VALUES_BEFORE_KEY_EXISTED: dict[str, Any] = {"curvature_tasks": 1.0}


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a validated config from `agent_keys` output (a checkpoint's, a config.yaml).

    Keys its agent does not read are dropped (runs saved before config.yaml held only those
    wrote every key); keys it lacks take `VALUES_BEFORE_KEY_EXISTED` or their defaults."""
    data = {**VALUES_BEFORE_KEY_EXISTED, **data}
    config = _apply(
        TrainConfig(), _read_by(str(data.get("agent", TrainConfig.agent)), data), "the saved config"
    )
    validate(config)
    return config


class AgentConfig:
    """The part of a `TrainConfig` that one agent reads: its keys read and set through to the
    config; any other key is an AttributeError naming the agent. What `metarl.agent.build`
    hands an agent."""

    def __init__(self, config: TrainConfig, reads: frozenset[str]) -> None:
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "_reads", reads)

    def _check(self, key: str) -> None:
        if key not in self._reads:
            raise AttributeError(f"agent {self._config.agent} does not read config key {key!r}")

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        self._check(key)
        return getattr(self._config, key)

    def __setattr__(self, key: str, value: Any) -> None:
        self._check(key)
        setattr(self._config, key, value)

    def __repr__(self) -> str:
        return f"AgentConfig({', '.join(f'{k}={v!r}' for k, v in agent_keys(self._config).items())})"


def agent_keys(config: TrainConfig) -> dict[str, Any]:
    """The keys `config`'s agent reads, with their values, in section order: what a run's
    config.yaml and checkpoints hold."""
    from metarl.registry import AGENTS

    reads = AGENTS[config.agent].reads
    return {key: value for key, value in config.to_dict().items() if key in reads}


def validate(config: TrainConfig) -> None:
    """Check values that types cannot: env id, agent, backend, positive sizes."""
    import gymnasium as gym

    from metarl.registry import AGENTS
    from metarl.sampling import BACKENDS
    from metarl.sampling.base import available_cores
    from metarl.tasks import registered_families

    if config.env_id not in gym.registry:
        raise ConfigError(
            f"unknown env id {config.env_id!r}; task families: {', '.join(registered_families())} "
            "(a family of your own: gym.register(id, entry_point=YourEnv) first)"
        )
    if config.agent not in AGENTS:
        raise ConfigError(f"unknown agent {config.agent!r}; choose from {', '.join(sorted(AGENTS))}")
    defaults = TrainConfig()
    changed = [key for key in field_names() if getattr(config, key) != getattr(defaults, key)]
    unread = _unread(config.agent, changed)
    if unread:
        raise ConfigError(
            f"agent {config.agent} does not read {', '.join(unread)}; leave them at their defaults"
        )
    if config.sampler_backend not in BACKENDS:
        raise ConfigError(f"unknown sampler_backend {config.sampler_backend!r}; choose from {list(BACKENDS)}")
    if config.sampler_backend == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("sampler_backend 'ray' needs Ray: pip install 'metarl[ray]' (or pip install ray)")

    def require(condition: bool, message: str) -> None:
        if not condition:
            raise ConfigError(message)

    for declared in dataclasses.fields(TrainConfig):  # the bounds declared with the keys
        if "bound" in declared.metadata:
            declared.metadata["bound"].check(declared.name, getattr(config, declared.name))
    require(
        "curvature_tasks" not in AGENTS[config.agent].reads
        or config.curvature_fraction == 1
        or config.curvature_tasks == 1,
        f"curvature_fraction={config.curvature_fraction} (F alone on a share of the episodes) replaces "
        f"the exact curvature that curvature_tasks={config.curvature_tasks} shares out over tasks: "
        "set curvature_tasks=1 with it",
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
    _check_step_sizes(config.eval_inner_lrs)
    cores = available_cores()
    require(
        config.sampler_backend != "processes"
        or config.num_workers is None
        or config.num_workers <= cores
        or config.allow_oversubscription,
        f"num_workers={config.num_workers} is more than this machine's {cores} cores (more workers than "
        "cores only slow sampling and multiply memory); lower it, leave it null for one per core, "
        "or set allow_oversubscription=true",
    )
    try:  # the family must build with these kwargs
        from metarl.tasks import family_of

        family_of(config.env_id, config.env_kwargs)
    except Exception as err:
        raise ConfigError(
            f"{config.env_id} cannot be built with env_kwargs={config.env_kwargs}: {err}"
        ) from err


def _check_step_sizes(step_sizes: list[float]) -> None:
    if not step_sizes or not all(
        isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0
        for lr in step_sizes
    ):
        raise ConfigError(f"eval_inner_lrs must be a non-empty list of positive step sizes, got {step_sizes}")


def check_value(key: str, value: Any) -> Any:
    """`value` as config key `key` holds it: type-checked (an int becomes a float where a float
    is expected) and within the key's declared bounds; `ConfigError` saying what is valid
    otherwise. For options that set a key outside a config (evaluate.py's)."""
    value = _check_type(key, value)
    declared = next(f for f in dataclasses.fields(TrainConfig) if f.name == key)
    if "bound" in declared.metadata:
        declared.metadata["bound"].check(key, value)
    if key == "eval_inner_lrs":
        _check_step_sizes(value)
    return value


def save_config(config: TrainConfig, path: Path) -> None:
    """Write the keys `config`'s agent reads as YAML."""
    path.write_text(yaml.safe_dump(agent_keys(config), sort_keys=False))
