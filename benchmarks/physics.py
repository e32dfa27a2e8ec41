"""The physics limit of a batch of episodes: its exact trajectories replayed in bare mj_step loops.

Physics cost depends on the states visited (a HalfCheetah on its back is in contact and
steps slower than one running), so the reference for a sampler is the same episodes:
every episode restarts from the reset state its slot seed gives and steps the actions it
took, ``mj_step`` at the env's frame skip with nothing but the control write around it.
Parallel replays run in spawned processes, one per core, released together by a barrier.
"""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np

from metarl.episodes import Episodes
from metarl.sampling.worker import to_env_actions
from metarl.tasks import family_of

Replay = tuple[np.ndarray, np.ndarray, np.ndarray]  # (initial qpos [nq], qvel [nv], controls [steps, nu])


def replays(env_id: str, episodes: Episodes, reset_seeds: np.ndarray) -> list[Replay]:
    """One replay per episode of `episodes` [tasks, E, ...]; reset_seeds: [tasks * E] the
    slots' env reset seeds (``slot_seeds(...)[:, 0]`` of the sample call)."""
    family = family_of(env_id)
    actions = episodes.actions.reshape(-1, *episodes.actions.shape[2:]).numpy()
    lengths = episodes.lengths.reshape(-1).numpy()
    out = []
    for seed, episode_actions, length in zip(reset_seeds, actions, lengths):
        qpos, qvel = family.initial_state(np.random.default_rng(int(seed)))
        controls = to_env_actions(episode_actions[:length], family.action_space)
        out.append((qpos, qvel, controls))
    return out


def _replay_worker(env_id: str, jobs: list[Replay], barrier, results) -> None:
    import mujoco

    family = family_of(env_id)
    model, frame_skip = family.model, family.frame_skip
    data = mujoco.MjData(model)
    barrier.wait()
    start = time.perf_counter()
    for qpos, qvel, controls in jobs:
        mujoco.mj_resetData(model, data)
        data.qpos[:], data.qvel[:] = qpos, qvel
        mujoco.mj_forward(model, data)
        for control in controls:
            data.ctrl[:] = control
            mujoco.mj_step(model, data, nstep=frame_skip)
    results.put(time.perf_counter() - start)


def replay_seconds(env_id: str, jobs: list[Replay], workers: int) -> float:
    """Wall seconds to replay `jobs` on `workers` cores in parallel (episodes dealt out so
    that every worker gets about the same number of steps)."""
    order = np.argsort([-len(job[2]) for job in jobs])
    shares: list[list[Replay]] = [[] for _ in range(workers)]
    loads = np.zeros(workers)
    for index in order:  # longest first, to the least loaded worker
        worker = int(np.argmin(loads))
        shares[worker].append(jobs[index])
        loads[worker] += len(jobs[index][2])
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(target=_replay_worker, args=(env_id, share, barrier, results)) for share in shares
    ]
    for process in processes:
        process.start()
    times = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return max(times)
