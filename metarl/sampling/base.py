"""What every sampler backend shares: backend names, the error contract and array layouts."""

from __future__ import annotations

import os

import numpy as np

from metarl.tasks import Task

BACKENDS = ("processes", "ray", "local")
STARTUP_TIMEOUT_S = 120.0  # for a worker to import, build its policy and answer
# The pace a worker is granted on a request, env steps per second with the policy in the loop
# on one core: several times slower than any family runs here (the slowest, Meta-World, runs
# about 1,500 steps/s per core, and half that when another job shares the cores), so only a
# hung or starved worker misses its deadline.
SLOWEST_STEPS_PER_S = 250.0

# name -> (shape, dtype) of each array a sample call returns
Layout = dict[str, tuple[tuple[int, ...], np.dtype]]


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def request_time_limit_s(timeout_s: float, num_rows: int, layout: Layout) -> float:
    """Seconds a worker may take to answer a request of `num_rows` rows (episodes, or trials)
    of `layout`: its env steps at `SLOWEST_STEPS_PER_S`, plus `timeout_s`."""
    steps_per_row = int(np.prod(layout["rewards"][0][1:]))
    return timeout_s + num_rows * steps_per_row / SLOWEST_STEPS_PER_S


def no_answer(limit_s: float, timeout_s: float, what: str = "worker") -> str:
    """The cause of a request that missed its deadline."""
    return (
        f"no answer within {limit_s:.0f} s (worker_timeout_s={timeout_s:g} plus "
        f"{1000 / SLOWEST_STEPS_PER_S:g} ms per env step of the request); the {what} was stopped"
    )


class SamplerError(RuntimeError):
    """A rollout worker failed; the message names the worker, its tasks and the cause."""


def worker_failure(index: int, doing: str, tasks: list[Task] | None, cause: str) -> SamplerError:
    where = f" on tasks {tasks}" if tasks and doing == "sampling" else ""
    return SamplerError(f"sampler worker {index} failed while {doing}{where}: {cause}")
