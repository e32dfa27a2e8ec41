"""What every sampler backend shares: backend names, the error contract and array layouts."""

from __future__ import annotations

import numpy as np

from metarl.tasks import Task

BACKENDS = ("processes", "ray", "local")
STARTUP_TIMEOUT_S = 120.0  # for a worker to import, build its policy and answer

# name -> (shape, dtype) of each array a sample call returns
Layout = dict[str, tuple[tuple[int, ...], np.dtype]]


class SamplerError(RuntimeError):
    """A rollout worker failed; the message names the worker, its tasks and the cause."""


def worker_failure(index: int, doing: str, tasks: list[Task] | None, cause: str) -> SamplerError:
    where = f" on tasks {tasks}" if tasks and doing == "sampling" else ""
    return SamplerError(f"sampler worker {index} failed while {doing}{where}: {cause}")
