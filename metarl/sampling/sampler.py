"""Task-parallel sampler: all tasks of a meta-batch at once, over one or more workers.

Backends:
- ``local``: one `RolloutWorker` in this process (tests, debugging, cheap numpy envs);
- ``processes``: persistent worker processes (``spawn`` by default, one per core), each with
  a share of the (task, episode) slots. Parameters go out, episode arrays come back.

Both give identical episodes for the same seed: every slot's randomness comes from its own
seed (see `RolloutWorker`). A sampler is a context manager; `close()` stops its workers, and
a worker that dies or raises turns into a `SamplerError` naming the worker, its tasks and
the cause, never a hang.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import traceback
from typing import Any

import numpy as np
import torch

from metarl.episodes import Episodes
from metarl.policies import Params
from metarl.sampling.worker import RolloutWorker
from metarl.seeding import slot_seeds
from metarl.tasks import Task

BACKENDS = ("local", "processes")


class SamplerError(RuntimeError):
    """A rollout worker failed; the message names the worker, its tasks and the cause."""


def _worker_main(conn, worker_args: tuple, worker_index: int) -> None:
    """Entry point of a worker process: serve rollout requests until told to close."""
    torch.set_num_threads(1)  # one core per worker; the workers together use them all
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes us
    try:
        worker = RolloutWorker(*worker_args)
    except BaseException:  # report construction failures too
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", worker_index))
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if message[0] == "close":
            break
        try:
            conn.send(("ok", worker.rollout(*message[1:])))
        except Exception:
            conn.send(("error", traceback.format_exc()))
    worker.close()
    conn.close()


class Sampler:
    """Collects `episodes_per_task` episodes for each task with per-task parameters.

    env_id/env_kwargs: the task family; policy_spec: `GaussianMLPPolicy.spec()`;
    horizon: maximum episode length in steps; num_workers: processes (None = one per core);
    rescale_actions: policy actions in [-1, 1] map onto the env's action bounds
    (`to_env_actions`); off, they go to the env as they are.
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
        timeout_s: float = 600.0,
        rescale_actions: bool = True,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown sampler backend {backend!r}; choose from {list(BACKENDS)}")
        self.backend = backend
        self.timeout_s = timeout_s
        worker_args = (env_id, dict(env_kwargs), dict(policy_spec), int(horizon), rescale_actions)
        self._local: RolloutWorker | None = None
        self._processes: list[Any] = []
        self._conns: list[Any] = []
        self._pending_tasks: dict[int, list[Task]] = {}  # worker index -> tasks it is sampling
        if backend == "local":
            self._local = RolloutWorker(*worker_args)
            self.num_workers = 1
            return
        self.num_workers = int(num_workers or os.cpu_count() or 1)
        context = mp.get_context(start_method)
        try:
            for index in range(self.num_workers):
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
            for index in range(self.num_workers):
                self._receive(index, "starting")
        except BaseException:
            self.close()
            raise

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
        num_tasks = len(tasks)
        num_slots = num_tasks * episodes_per_task
        seeds = slot_seeds(seed_sequence, num_slots)
        slot_task = np.repeat(np.arange(num_tasks), episodes_per_task)
        numpy_params = {k: v.detach().cpu().numpy() for k, v in params.items()}
        for name, value in numpy_params.items():
            if value.shape[0] != num_tasks:
                raise ValueError(f"parameter {name!r} has {value.shape[0]} task rows for {num_tasks} tasks")
        if self._local is not None:
            arrays = self._local.rollout(tasks, numpy_params, slot_task, seeds)
        else:
            arrays = self._sample_processes(tasks, numpy_params, slot_task, seeds)
        shaped = {
            name: value.reshape(num_tasks, episodes_per_task, *value.shape[1:])
            for name, value in arrays.items()
        }
        return Episodes.from_numpy(shaped, tasks)

    def _sample_processes(
        self,
        tasks: list[Task],
        params: dict[str, np.ndarray],
        slot_task: np.ndarray,
        seeds: np.ndarray,
    ) -> dict[str, np.ndarray]:
        chunks = [c for c in np.array_split(np.arange(len(slot_task)), self.num_workers) if len(c)]
        self._pending_tasks = {}
        for index, chunk in enumerate(chunks):
            chunk_tasks = np.unique(slot_task[chunk])
            local_index = np.searchsorted(chunk_tasks, slot_task[chunk])
            worker_tasks = [tasks[i] for i in chunk_tasks]
            worker_params = {k: v[chunk_tasks] for k, v in params.items()}
            self._pending_tasks[index] = worker_tasks
            self._send(index, ("rollout", worker_tasks, worker_params, local_index, seeds[chunk]))
        # Collect every worker's reply even after one fails, so that no stale reply is left
        # in a pipe to be mistaken for the answer to the next call.
        results, first_error = [], None
        for index in range(len(chunks)):
            try:
                results.append(self._receive(index, "sampling"))
            except SamplerError as err:
                first_error = first_error or err
        if first_error is not None:
            raise first_error
        return {name: np.concatenate([r[name] for r in results]) for name in results[0]}

    def _send(self, index: int, message: tuple) -> None:
        try:
            self._conns[index].send(message)
        except (BrokenPipeError, ConnectionResetError, OSError) as err:
            raise self._worker_error(index, "sending work", f"its pipe is closed ({err})") from err

    def _receive(self, index: int, doing: str) -> Any:
        conn, process = self._conns[index], self._processes[index]
        deadline = time.monotonic() + self.timeout_s
        while not conn.poll(0.05):
            if not process.is_alive():
                raise self._worker_error(index, doing, f"the process died with exit code {process.exitcode}")
            if time.monotonic() > deadline:
                raise self._worker_error(index, doing, f"no answer within {self.timeout_s:.0f} s")
        try:
            status, payload = conn.recv()
        except (EOFError, ConnectionResetError, OSError) as err:
            raise self._worker_error(index, doing, f"its pipe broke ({err})") from err
        if status == "error":
            cause = payload.strip().splitlines()[-1]
            raise self._worker_error(index, doing, f"{cause}\nworker traceback:\n{payload}")
        return payload

    def _worker_error(self, index: int, doing: str, cause: str) -> SamplerError:
        tasks = self._pending_tasks.get(index)
        where = f" on tasks {tasks}" if tasks and doing == "sampling" else ""
        return SamplerError(f"sampler worker {index} failed while {doing}{where}: {cause}")

    def close(self) -> None:
        """Stop all workers (gracefully, then by force); safe to call twice."""
        if self._local is not None:
            self._local.close()
            self._local = None
        for conn in self._conns:
            try:
                conn.send(("close",))
            except (BrokenPipeError, OSError):
                pass
        for process in self._processes:
            process.join(timeout=2.0)
            if process.is_alive():
                process.terminate()
                process.join(timeout=2.0)
            if process.is_alive():
                process.kill()
                process.join()
        for conn in self._conns:
            conn.close()
        self._processes, self._conns = [], []

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
