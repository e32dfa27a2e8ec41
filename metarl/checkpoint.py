"""Checkpoints: one `torch.save` dict of tensors and primitives, written atomically.

Contents: ``format_version``, ``iteration`` (completed meta-iterations), ``env_steps``,
``agent`` (the agent's state dict), ``config`` (the resolved config's keys that its agent
reads, as a dict). Every random
stream derives from (seed, iteration) (see `metarl.seeding`), so no RNG state is needed for
a resumed run to equal an uninterrupted one. Loading uses ``weights_only=True``.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from metarl.config import TrainConfig, agent_keys, config_from_dict
from metarl.optim import NonFiniteError, non_finite_entries

FORMAT_VERSION = 1
REQUIRED_KEYS = ("iteration", "env_steps", "agent", "config")  # besides format_version
_NAME = re.compile(r"^iteration_(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or of an unknown format."""


class RunWriteError(RuntimeError):
    """A run's directory or checkpoint cannot be written; the message names the path and the
    operating system's error."""


def _os_reason(err: BaseException) -> str:
    return err.strerror if isinstance(err, OSError) and err.strerror else str(err).splitlines()[0]


def check_writable(run_dir: Path) -> None:
    """`RunWriteError` unless a run can write its files: into `run_dir` and its checkpoints/
    where they exist, else into the nearest existing folder above, where `run_dir` will be made.

    Writes and removes a probe file (permission bits alone say nothing for root, nor for a
    read-only file system)."""
    run_dir = Path(run_dir)
    folders = [d for d in (run_dir / "checkpoints", run_dir) if d.is_dir()]
    if not folders:
        folders = [next(p for p in run_dir.absolute().parents if p.exists())]
    for folder in folders:
        try:
            handle, probe = tempfile.mkstemp(dir=folder, prefix=".metarl-write-probe-")
            os.close(handle)
            os.unlink(probe)
        except OSError as err:
            raise RunWriteError(
                f"cannot write into {folder} ({_os_reason(err)}), where the run {run_dir} keeps its "
                "files: choose a writable --run-dir or run_root"
            ) from err


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
    """Write `state` to ``directory/iteration_<N>.pt``: serialised in memory, written to a
    temporary file, synced, renamed over the target, and the directory synced.

    `NonFiniteError` (nothing written) if a tensor of the state is not finite; `RunWriteError`
    naming the path and the OS error if the write fails, with the temporary file removed and
    every earlier checkpoint as it was."""
    bad = non_finite_entries(state)
    if bad:
        raise NonFiniteError(f"a checkpoint must hold finite values, but {', '.join(bad[:3])} are not")
    path = Path(directory) / f"iteration_{int(state['iteration']):06d}.pt"
    temporary = path.with_suffix(".pt.tmp")
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **state}, buffer)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _sync_directory(path.parent)
    except OSError as err:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
        raise RunWriteError(
            f"could not write checkpoint {path} ({_os_reason(err)}); the run's earlier checkpoints are "
            "kept: free the space or fix the permissions, then resume"
        ) from err
    return path


def _sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


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
    """Load and check a checkpoint; raise `CheckpointError` saying what is wrong (and, for a
    file that does not load, which other checkpoints of its run do)."""
    path = checkpoint_file(path)
    try:
        return _load_checked(path)
    except CheckpointError as err:
        if not path.is_file():
            raise
        raise CheckpointError(f"{err}; {_loadable_siblings(path)}") from err.__cause__


def _load_checked(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} does not exist") from err
    except pickle.UnpicklingError as err:
        # torch's own message goes on to advise weights_only=False, the unsafe load: not ours
        if not zipfile.is_zipfile(path):
            raise CheckpointError(
                f"{path} is not a loadable metarl checkpoint: it is corrupt (not the zip archive "
                "that torch.save writes)"
            ) from err
        raise CheckpointError(
            f"{path} is not a loadable metarl checkpoint: it holds objects other than tensors and "
            "plain values, which weights-only loading refuses (no code in it was run)"
        ) from err
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(
            f"{path} is not a loadable metarl checkpoint: it is corrupt ({reason})"
        ) from err
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


def _loadable_siblings(path: Path) -> str:
    """Which other checkpoints beside `path` load, newest first, as a clause of a message."""
    loadable = []
    for other in sorted(path.parent.glob("iteration_*.pt"), reverse=True):
        if other != path and _NAME.match(other.name):
            try:
                _load_checked(other)
            except CheckpointError:
                continue
            loadable.append(other.name)
    if not loadable:
        return f"no other checkpoint in {path.parent} loads"
    return f"these checkpoints in {path.parent} load: {', '.join(loadable)} (pass one by its path)"


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
