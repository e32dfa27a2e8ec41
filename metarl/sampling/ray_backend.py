"""The ``ray`` sampler backend: `RolloutWorker`s as Ray actors (``pip install metarl[ray]``).

Each actor is the same worker the ``processes`` backend runs, with one CPU and one torch
thread. Requests go out as task arguments; episode arrays come back through Ray's object
store (shared memory on the same node). ``address`` joins an existing cluster (every node
needs metarl installed); without one, a local cluster with `num_workers` CPUs is started, or
the one this process already started is reused.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from metarl.sampling.base import (
    STARTUP_TIMEOUT_S,
    Layout,
    SamplerError,
    no_answer,
    request_time_limit_s,
    worker_failure,
)
from metarl.sampling.worker import RolloutRequest, TrialRequest, make_worker


class _ActorWorker:
    """A rollout or trial worker (`make_worker`) that keeps to one torch thread (it owns one CPU)."""

    def __init__(self, *worker_args: Any) -> None:
        import torch

        torch.set_num_threads(1)
        self.worker = make_worker(*worker_args)

    def rollout(self, request: RolloutRequest | TrialRequest) -> dict[str, np.ndarray]:
        return self.worker.rollout(request)

    def ping(self) -> bool:
        return True


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "the 'ray' sampler backend needs Ray: pip install 'metarl[ray]' (or pip install ray)"
        ) from err
    return ray


class RayWorkers:
    """`num_workers` Ray actors, one per request, with `ProcessWorkers`' error contract."""

    def __init__(self, worker_args: tuple, num_workers: int, address: str | None, timeout_s: float) -> None:
        ray = self._ray = _import_ray()
        self.timeout_s = timeout_s
        self._started_ray = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, logging_level="warning")
            else:
                ray.init(num_cpus=num_workers, include_dashboard=False, logging_level="warning")
                self._started_ray = True
        self._actors: list[Any] = []
        self._pending_tasks: dict[int, list] = {}
        try:
            actor_class = ray.remote(num_cpus=1, max_restarts=0)(_ActorWorker)
            self._actors = [actor_class.remote(*worker_args) for _ in range(num_workers)]
            limit_s = max(timeout_s, STARTUP_TIMEOUT_S)
            deadline = time.monotonic() + limit_s
            for index, actor in enumerate(self._actors):
                self._get(index, actor.ping.remote(), "starting", deadline, limit_s)
        except BaseException:
            self.close()
            raise

    def run(self, requests: list[RolloutRequest | TrialRequest], layout: Layout) -> dict[str, np.ndarray]:
        """Give request i to actor i; returns the episode arrays of all slots, in order."""
        if len(requests) > len(self._actors):
            raise ValueError(f"{len(requests)} requests for {len(self._actors)} actors")
        self._pending_tasks = {index: request.tasks for index, request in enumerate(requests)}
        refs = [actor.rollout.remote(request) for actor, request in zip(self._actors, requests)]
        results, first_error = [], None
        # one deadline for the whole call: the slowest request's time limit
        limit_s = max(request_time_limit_s(self.timeout_s, len(r.slot_seeds), layout) for r in requests)
        deadline = time.monotonic() + limit_s
        for index, ref in enumerate(refs):  # wait for all, so no call is left running
            try:
                results.append(self._get(index, ref, "sampling", deadline, limit_s))
            except SamplerError as err:
                first_error = first_error or err
        if first_error is not None:
            raise first_error
        return {name: np.concatenate([r[name] for r in results]) for name in layout}

    def _get(self, index: int, ref: Any, doing: str, deadline: float, limit_s: float) -> Any:
        """The result of `ref`, due by `deadline` (`limit_s` after its call began)."""
        ray = self._ray
        tasks = self._pending_tasks.get(index)
        try:
            return ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
        except ray.exceptions.GetTimeoutError as err:
            self._ray.kill(self._actors[index])  # a hung actor is stopped, never waited for again
            cause = no_answer(limit_s, self.timeout_s, "actor")
            raise worker_failure(index, doing, tasks, cause) from err
        except ray.exceptions.RayActorError as err:
            cause = f"the actor died ({type(err).__name__}: {str(err).strip()})"
            raise worker_failure(index, doing, tasks, cause) from err
        except ray.exceptions.RayTaskError as err:
            cause = str(err).strip().splitlines()[-1]
            raise worker_failure(index, doing, tasks, f"{cause}\nworker traceback:\n{err}") from err
        except ray.exceptions.RayError as err:  # lost objects, out of memory, system errors
            raise worker_failure(index, doing, tasks, f"{type(err).__name__}: {err}") from err

    def close(self) -> None:
        """Kill the actors; shut down the local cluster if this sampler started it."""
        if not hasattr(self, "_ray"):
            return
        # A cluster already shut down (Ray's own exit hook runs before a sampler left open is
        # collected) took its actors with it; ray.kill would start a new one and wait on it.
        actors = getattr(self, "_actors", []) if self._ray.is_initialized() else []
        for actor in actors:
            try:
                self._ray.kill(actor)
            except Exception:
                pass
        self._actors = []
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()
            self._started_ray = False
