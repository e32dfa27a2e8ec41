"""Task-parallel sampler: all tasks of a meta-batch at once, over one or more workers.

Backends (all run the same workers: `RolloutWorker` for MAML's episodes, which are identical
for the same seed whatever the backend and worker count, or `TrialWorker` for RL2's trials,
see its note on worker counts):
- ``processes`` (default): persistent worker processes (``spawn``, one per core, one torch
  thread each), each with a contiguous share of the (task, episode) slots. Parameters go
  out through a pipe; episodes come back through one shared-memory block that every worker
  writes its rows of directly, so no episode array is pickled.
- ``ray``: the same worker as Ray actors, on an existing cluster (``address``) or a local one
  started on demand (``pip install metarl[ray]``); see `metarl.sampling.ray_backend`.
- ``local``: one worker in this process (tests, debugging).

Every slot's randomness comes from its own seed (see `RolloutWorker`). A sampler is a
context manager; `close()` stops its workers and frees the shared memory. A worker that dies
or raises while sampling turns into a `SamplerError` naming the worker, its tasks and the
cause (an exception and its traceback, or the exit code and signal), never a hang; a worker
that does not answer a request within ``timeout_s`` plus its env steps at `SLOWEST_STEPS_PER_S`
(`request_time_limit_s`) is stopped and reported the same way.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
import traceback
from multiprocessing import connection as mp_connection
from multiprocessing import shared_memory
from typing import Any

import cloudpickle
import numpy as np
import torch

from metarl.episodes import Episodes
from metarl.policies import Params
from metarl.sampling.base import (
    BACKENDS,
    STARTUP_TIMEOUT_S,
    Layout,
    SamplerError,
    available_cores,
    no_answer,
    request_time_limit_s,
    worker_failure,
)
from metarl.sampling.worker import (
    WORKERS,
    RolloutRequest,
    TrialRequest,
    episode_arrays_layout,
    make_worker,
    trial_arrays_layout,
)
from metarl.seeding import slot_seeds
from metarl.tasks import Task, env_spec


def chunk_sizes(num_slots: int, num_workers: int) -> list[int]:
    """Sizes of the consecutive slot chunks, one per worker: as equal as they can be.

    Every chunk pays a fixed cost per step (the policy forward, the bookkeeping), so one
    chunk per worker is cheapest (docs/results.md, "Sampling": against guided self-scheduling).
    """
    return [len(chunk) for chunk in np.array_split(np.arange(num_slots), num_workers) if len(chunk)]


def _views(buffer: memoryview, layout: Layout) -> dict[str, np.ndarray]:
    """Arrays laid out back to back in `buffer` (each 64-byte aligned)."""
    arrays, offset = {}, 0
    for name, (shape, dtype) in layout.items():
        count = int(np.prod(shape))
        arrays[name] = np.ndarray(shape, dtype, buffer=buffer, offset=offset)
        offset += -(-count * dtype.itemsize // 64) * 64
    return arrays


def _layout_bytes(layout: Layout) -> int:
    return sum(-(-int(np.prod(shape)) * dtype.itemsize // 64) * 64 for shape, dtype in layout.values())


def _worker_main(conn, worker_args: tuple, worker_index: int) -> None:
    """Entry point of a worker process: serve rollout requests until told to close."""
    torch.set_num_threads(1)  # one core per worker; the workers together use them all
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes us
    try:
        worker = make_worker(*worker_args)
    except BaseException:  # report construction failures too
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", worker_index))
    block: shared_memory.SharedMemory | None = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if message[0] == "close":
            break
        _, request, block_name, layout, rows = message
        try:
            if block is None or block.name != block_name:
                if block is not None:
                    block.close()
                block = shared_memory.SharedMemory(name=block_name)
            out = {name: array[rows[0] : rows[1]] for name, array in _views(block.buf, layout).items()}
            worker.rollout(request, out)
            del out
            conn.send(("ok", None))
        except Exception:
            conn.send(("error", traceback.format_exc()))
    if block is not None:
        block.close()
    worker.close()
    conn.close()


class ProcessWorkers:
    """Persistent worker processes; episode arrays come back through shared memory."""

    def __init__(self, worker_args: tuple, num_workers: int, start_method: str, timeout_s: float) -> None:
        self.num_workers, self.timeout_s = num_workers, timeout_s
        self._processes: list[Any] = []
        self._conns: list[Any] = []
        self._block: shared_memory.SharedMemory | None = None
        self._pending_tasks: dict[int, list[Task]] = {}
        self._outstanding: set[int] = set()  # workers with a request not yet answered
        context = mp.get_context(start_method)
        try:
            for index in range(num_workers):
                parent_conn, child_conn = context.Pipe()
                process = context.Process(
                    target=_worker_main,
                    args=(child_conn, worker_args, index),
                    name=f"metarl-sampler-{index}",
                    daemon=True,
                )
                process.start()
                child_conn.close()
                self._processes.append(process)
                self._conns.append(parent_conn)
            for index in range(num_workers):  # imports and env construction may take a while
                self._receive(index, "starting", max(timeout_s, STARTUP_TIMEOUT_S))
        except BaseException:
            self.close()
            raise

    def _shared_arrays(self, layout: Layout) -> dict[str, np.ndarray]:
        """Views of a shared block big enough for `layout` (grown when needed)."""
        needed = max(_layout_bytes(layout), 1)
        if self._block is None or self._block.size < needed:
            self._free_block()
            self._block = shared_memory.SharedMemory(create=True, size=needed)
        return _views(self._block.buf, layout)

    def run(self, requests: list[RolloutRequest | TrialRequest], layout: Layout) -> dict[str, np.ndarray]:
        """Run the requests (consecutive slot ranges) on whichever worker is free; returns
        the episode arrays of all slots, in order."""
        self._drain()
        arrays = self._shared_arrays(layout)
        ends = np.cumsum([len(request.slot_task) for request in requests]).tolist()
        rows = list(zip([0, *ends[:-1]], ends))
        waiting = list(range(len(requests)))[::-1]  # a stack: pop() gives the next request
        busy: dict[int, tuple[float, float]] = {}  # worker -> (deadline, time limit) of its request
        limits = [request_time_limit_s(self.timeout_s, end - begin, layout) for begin, end in rows]
        self._pending_tasks = {}
        first_error = None

        def dispatch(worker: int) -> None:
            number = waiting.pop()
            self._pending_tasks[worker] = requests[number].tasks
            busy[worker] = (time.monotonic() + limits[number], limits[number])
            self._send(worker, ("rollout", requests[number], self._block.name, layout, rows[number]))

        try:
            for worker in range(min(self.num_workers, len(requests))):
                dispatch(worker)
        except SamplerError as err:
            first_error = err
            waiting.clear()
        # Wait for every dispatched request even after a failure. (A call left early, by
        # Ctrl-C for instance, leaves its requests outstanding; the next call drains them
        # before it reuses the shared block.)
        while busy:
            ready = mp_connection.wait([self._conns[w] for w in busy], timeout=0.05)
            finished = [self._conns.index(conn) for conn in ready]
            for worker in list(busy):
                if worker in finished:
                    continue
                if not self._processes[worker].is_alive():
                    finished.append(worker)
                elif time.monotonic() > busy[worker][0]:
                    limit = busy.pop(worker)[1]
                    self._stop(worker)  # a hung worker is stopped, never waited for again
                    first_error = first_error or self._error(
                        worker, "sampling", no_answer(limit, self.timeout_s)
                    )
            for worker in finished:
                del busy[worker]
                try:
                    self._read(worker, "sampling")
                except SamplerError as err:
                    first_error = first_error or err
                if waiting and first_error is None:
                    dispatch(worker)
        if first_error is not None:
            raise first_error
        return {name: array.copy() for name, array in arrays.items()}  # the block is reused

    def _drain(self) -> None:
        """Wait out requests of an earlier call that was left early (their replies are stale)."""
        for worker in sorted(self._outstanding):
            try:
                self._receive(worker, "finishing an interrupted call")
            except SamplerError:
                if not self._processes[worker].is_alive():
                    raise
                # else: the earlier call's own failure, stale now; the worker itself is fine

    def _send(self, index: int, message: tuple) -> None:
        try:
            self._conns[index].send(message)
        except (BrokenPipeError, ConnectionResetError, OSError) as err:
            raise self._error(index, "sampling", self._death(index, f"its pipe is closed ({err})")) from err
        self._outstanding.add(index)

    def _receive(self, index: int, doing: str, timeout_s: float | None = None) -> Any:
        conn, process = self._conns[index], self._processes[index]
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while not conn.poll(0.05):
            if not process.is_alive():
                break
            if time.monotonic() > deadline:
                self._stop(index)
                raise self._error(index, doing, f"no answer within {timeout_s:g} s; the worker was stopped")
        return self._read(index, doing)

    def _read(self, index: int, doing: str) -> Any:
        """The reply of worker `index`, which has one or has died."""
        conn = self._conns[index]
        try:
            if not conn.poll(0):
                raise EOFError
            status, payload = conn.recv()
        except (EOFError, ConnectionResetError, OSError) as err:
            self._outstanding.discard(index)
            raise self._error(index, doing, self._death(index, f"its pipe broke ({err!r})")) from err
        self._outstanding.discard(index)
        if status == "error":
            cause = payload.strip().splitlines()[-1]
            raise self._error(index, doing, f"{cause}\nworker traceback:\n{payload}")
        return payload

    def _death(self, index: int, otherwise: str) -> str:
        """Why worker `index` cannot answer: its exit (code, signal) if it has died."""
        process = self._processes[index]
        process.join(timeout=1.0)
        code = process.exitcode
        if code is None:
            return otherwise
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
            hint = ", e.g. the out-of-memory killer" if -code == signal.SIGKILL else ""
            return f"the process died with exit code {code} (killed by {name}{hint})"
        return f"the process died with exit code {code}"

    def _stop(self, index: int) -> None:
        process = self._processes[index]
        process.terminate()
        process.join(timeout=2.0)
        if process.is_alive():
            process.kill()
            process.join()
        self._outstanding.discard(index)

    def _error(self, index: int, doing: str, cause: str) -> SamplerError:
        return worker_failure(index, doing, self._pending_tasks.get(index), cause)

    def _free_block(self) -> None:
        if self._block is not None:
            self._block.close()
            self._block.unlink()
            self._block = None

    def close(self) -> None:
        """Stop all workers (gracefully, then by force) and free the shared block."""
        for conn in self._conns:
            try:
                conn.send(("close",))
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + 2.0  # one grace period for all (busy workers finish first)
        for process in self._processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(timeout=2.0)
            if process.is_alive():
                process.kill()
                process.join()
        for conn in self._conns:
            conn.close()
        self._processes, self._conns = [], []
        self._free_block()


class Sampler:
    """Collects `episodes_per_task` episodes for each task with per-task parameters.

    env_id/env_kwargs: the task family; policy_spec: the policy's ``spec()``
    (`GaussianMLPPolicy` for ``worker="episodes"``, `RecurrentPolicy` for ``"trials"``);
    horizon: maximum episode length in steps; num_workers: workers (None = one per core);
    worker: ``"episodes"`` (`sample`: episodes with per-task parameters, MAML) or
    ``"trials"`` (`sample_trials`: RL2 trials of several episodes with a recurrent policy);
    address: the Ray cluster to join (``ray`` backend; None starts a local one);
    rescale_actions: policy actions in [-1, 1] map onto the env's action bounds
    (`to_env_actions`); off, they go to the env as they are; timeout_s: seconds a worker may
    take on a request beyond its env steps at `SLOWEST_STEPS_PER_S` (`request_time_limit_s`).
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        policy_spec: dict[str, Any],
        horizon: int,
        backend: str = "processes",
        num_workers: int | None = None,
        start_method: str = "spawn",
        timeout_s: float = 30.0,
        rescale_actions: bool = True,
        address: str | None = None,
        worker: str = "episodes",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown sampler backend {backend!r}; choose from {list(BACKENDS)}")
        if worker not in WORKERS:
            raise ValueError(f"unknown sampler worker {worker!r}; choose from {list(WORKERS)}")
        self.backend, self.worker = backend, worker
        self.env_steps = 0  # env steps sampled so far, all calls together
        self.horizon = int(horizon)
        self.obs_dim, self.act_dim = int(policy_spec["obs_dim"]), int(policy_spec["act_dim"])
        self.stored_action_dim = 1 if policy_spec.get("discrete") else self.act_dim
        # the family goes to the workers as its gymnasium spec by cloudpickle (as gymnasium's
        # AsyncVectorEnv sends env constructors): a family defined in __main__ or a notebook
        # works in spawned processes and Ray actors
        spec = cloudpickle.dumps(env_spec(env_id))
        worker_args = (worker, spec, dict(env_kwargs), dict(policy_spec), self.horizon, rescale_actions)
        self._local: Any = None
        self._workers: Any = None
        if backend == "local":
            self._local = make_worker(*worker_args)
            self.num_workers = 1
            return
        self.num_workers = int(num_workers or available_cores())
        if backend == "processes":
            self._workers = ProcessWorkers(worker_args, self.num_workers, start_method, timeout_s)
        else:
            from metarl.sampling.ray_backend import RayWorkers

            self._workers = RayWorkers(worker_args, self.num_workers, address, timeout_s)

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def sample(
        self,
        tasks: list[Task],
        params: Params,
        episodes_per_task: int,
        seed_sequence: np.random.SeedSequence,
    ) -> Episodes:
        """Episodes [len(tasks), episodes_per_task, horizon, ...].

        params: each tensor [len(tasks), ...], the parameters of each task (detached).
        seed_sequence: the stream of this call; slot seeds derive from it.
        """
        self._check_open("episodes")
        num_tasks = len(tasks)
        num_slots = num_tasks * episodes_per_task
        seeds = slot_seeds(seed_sequence, num_slots)
        slot_task = np.repeat(np.arange(num_tasks), episodes_per_task)
        slot_episode = np.tile(np.arange(episodes_per_task), num_tasks)
        numpy_params = {k: v.detach().cpu().numpy() for k, v in params.items()}
        for name, value in numpy_params.items():
            if value.shape[0] != num_tasks:
                raise ValueError(f"parameter {name!r} has {value.shape[0]} task rows for {num_tasks} tasks")
        sizes = [num_slots] if self._local is not None else chunk_sizes(num_slots, self.num_workers)
        requests = []
        for chunk in np.split(np.arange(num_slots), np.cumsum(sizes)[:-1]):
            chunk_tasks = np.unique(slot_task[chunk])
            requests.append(
                RolloutRequest(
                    tasks=[tasks[i] for i in chunk_tasks],
                    params={k: v[chunk_tasks] for k, v in numpy_params.items()},
                    slot_task=np.searchsorted(chunk_tasks, slot_task[chunk]),
                    slot_episode=slot_episode[chunk],
                    episodes_per_task=episodes_per_task,
                    slot_seeds=seeds[chunk],
                )
            )
        layout = episode_arrays_layout(num_slots, self.horizon, self.obs_dim, self.act_dim)
        arrays = self._run(requests, layout)
        shaped = {
            name: value.reshape(num_tasks, episodes_per_task, *value.shape[1:])
            for name, value in arrays.items()
        }
        return self._counted(Episodes.from_numpy(shaped, tasks))

    def sample_trials(
        self,
        tasks: list[Task],
        params: Params,
        episodes_per_trial: int,
        seed_sequence: np.random.SeedSequence,
    ) -> Episodes:
        """One RL2 trial per task: Episodes [len(tasks), episodes_per_trial, horizon, ...].

        params: the recurrent policy's ``state_dict()`` (one set, shared by all trials);
        seed_sequence: the stream of this call; trial seeds derive from it.
        """
        self._check_open("trials")
        num_trials = len(tasks)
        seeds = slot_seeds(seed_sequence, num_trials)
        numpy_params = {k: v.detach().cpu().numpy() for k, v in params.items()}
        sizes = [num_trials] if self._local is not None else chunk_sizes(num_trials, self.num_workers)
        requests = [
            TrialRequest([tasks[i] for i in chunk], numpy_params, episodes_per_trial, seeds[chunk])
            for chunk in np.split(np.arange(num_trials), np.cumsum(sizes)[:-1])
        ]
        layout = trial_arrays_layout(
            num_trials, episodes_per_trial, self.horizon, self.obs_dim, self.stored_action_dim
        )
        return self._counted(Episodes.from_numpy(self._run(requests, layout), tasks))

    def _counted(self, episodes: Episodes) -> Episodes:
        self.env_steps += episodes.env_steps
        return episodes

    def _check_open(self, worker: str) -> None:
        if self._local is None and self._workers is None:
            raise RuntimeError("this sampler is closed")
        if self.worker != worker:
            method = "sample" if self.worker == "episodes" else "sample_trials"
            raise RuntimeError(f"this sampler runs {self.worker!r} workers: call {method}()")

    def _run(self, requests: list, layout: Layout) -> dict[str, np.ndarray]:
        if self._local is not None:
            return self._local.rollout(requests[0])
        return self._workers.run(requests, layout)

    def close(self) -> None:
        """Stop all workers and free their resources; safe to call twice."""
        if self._local is not None:
            self._local.close()
            self._local = None
        if self._workers is not None:
            self._workers.close()
            self._workers = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
