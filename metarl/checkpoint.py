"""Checkpoints: one `torch.save` dict of tensors and primitives, written atomically.

Contents: ``format_version``, ``iteration`` (completed meta-iterations), ``env_steps``,
``agent`` (the agent's state dict), ``config`` (the resolved config's keys that its agent
reads, as a dict). Every random
stream derives from (seed, iteration) (see `metarl.seeding`), so no RNG state is needed for
a resumed run to equal an uninterrupted one. Loading uses ``weights_only=True``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from metarl.config import TrainConfig, agent_keys, config_from_dict

FORMAT_VERSION = 1
REQUIRED_KEYS = ("iteration", "env_steps", "agent", "config")  # besides format_version
_NAME = re.compile(r"^iteration_(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or of an unknown format."""


def run_state(
    iteration: int, env_steps: int, agent_state: dict[str, Any], config: TrainConfig
) -> dict[str, Any]:
    """A run's checkpoint contents after `iteration` completed meta-iterations and `env_steps`
    environment steps (what `save_checkpoint` writes and `load_checkpoint` requires)."""
    return {
        "iteration": iteration,
        "env_steps": env_steps,
        "agent": agent_state,
        "config": agent_keys(config),
    }


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Write `state` to ``directory/iteration_<N>.pt`` via a temporary file and rename."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"iteration_{int(state['iteration']):06d}.pt"
    temporary = path.with_suffix(".pt.tmp")
    torch.save({"format_version": FORMAT_VERSION, **state}, temporary)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def latest_checkpoint(directory: Path) -> Path:
    """The checkpoint with the highest iteration in `directory`."""
    found = sorted(
        (int(m.group(1)), p) for p in Path(directory).glob("iteration_*.pt") if (m := _NAME.match(p.name))
    )
    if not found:
        raise CheckpointError(f"no checkpoint (iteration_*.pt) in {directory}")
    return found[-1][1]


def run_dir_of(path: Path) -> Path:
    """The run directory of `path`: a run directory itself, or ``<run>/checkpoints/<file>.pt``."""
    path = Path(path)
    return path.parent.parent if path.is_file() else path


def checkpoint_file(path: Path) -> Path:
    """`path` itself if it is a file, else the latest checkpoint of the run directory (or
    checkpoints directory) `path`."""
    path = Path(path)
    if path.is_dir():
        return latest_checkpoint(path / "checkpoints" if (path / "checkpoints").is_dir() else path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load and check a checkpoint; raise `CheckpointError` saying what is wrong."""
    path = checkpoint_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} does not exist") from err
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a metarl checkpoint: {err}") from err
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a metarl checkpoint (no format_version)")
    if state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {state['format_version']}, this metarl reads {FORMAT_VERSION}"
        )
    for key in REQUIRED_KEYS:
        if key not in state:
            raise CheckpointError(f"checkpoint {path} lacks {key!r}")
    return state


def load_policy_weights(policy: torch.nn.Module, path: Path) -> None:
    """Copy the policy (and value) weights of checkpoint file `path` into `policy`. Raises
    `CheckpointError` if they do not fit its shapes."""
    state = load_checkpoint(path)
    weights = state["agent"].get("policy") if isinstance(state["agent"], dict) else None
    if weights is None:
        raise CheckpointError(f"checkpoint {path} holds no policy weights ('agent' has no 'policy')")
    try:
        policy.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"the policy in {path} does not fit this config's policy: {err}") from err


def load_run(path: Path) -> tuple[dict[str, Any], TrainConfig]:
    """(checkpoint state, its run's config) of a run directory or checkpoint file.

    Raises `CheckpointError` or `ConfigError` saying what is wrong.
    """
    state = load_checkpoint(path)
    return state, config_from_dict(state["config"])
