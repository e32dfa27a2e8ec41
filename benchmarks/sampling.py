"""Sampler throughput against the physics limit, measured in one run.

    python benchmarks/sampling.py        # HalfCheetahVel, AntVel, Navigation2D; about 6 minutes
    python benchmarks/sampling.py --env metarl/HalfCheetahVel-v0 --tasks 8 --episodes 4 --with-local

Default batch: 40 tasks x 10 episodes x 200 steps (the paper's meta-batch, half its
episodes per task); Navigation2D: 20 x 20 x 100.

For each task family:
  (a) raw physics steps/s on one core: the sampled episodes replayed exactly (same reset
      states, same actions) with ``mujoco.mj_step`` at the env's frame skip in a bare loop
      (MuJoCo families only; see benchmarks/physics.py), also on all cores in parallel;
  (b) our sampler's env-steps/s with the policy in the loop (whole episodes, one batched
      forward per step): the process backend with 1..N workers (and in-process with
      --with-local);
  (c) b / a per worker; (d) scaling of the process backend from 1 to N workers.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from physics import replay_seconds, replays

from metarl import seeding
from metarl.episodes import Episodes
from metarl.policies import detach_params, make_policy, stack_params
from metarl.sampling import Sampler
from metarl.seeding import slot_seeds
from metarl.tasks import family_of, sample_train_tasks


def timed_sample(sampler: Sampler, tasks, params, episodes: int, call: int) -> tuple[float, Episodes]:
    """(env-steps/s, episodes) of one sample call."""
    start = time.perf_counter()
    batch = sampler.sample(tasks, params, episodes, seeding.seed_sequence(0, seeding.SAMPLING, call))
    return batch.env_steps / (time.perf_counter() - start), batch


def benchmark(
    env_id: str, tasks_n: int, episodes: int, horizon: int, rounds: int, max_workers: int, with_local: bool
) -> None:
    """Measure every configuration once per round, rounds interleaved (this machine's speed
    drifts by tens of percent over minutes); report medians over rounds."""
    family = family_of(env_id)
    policy = make_policy(family.observation_space, family.action_space, [100, 100], "relu", 1.0)
    tasks = sample_train_tasks(family, tasks_n, seed=0, iteration=0)
    params = detach_params(stack_params(policy.params(), tasks_n))
    configs = [("local", 1)] if with_local else []
    configs += [("processes", w) for w in range(1, max_workers + 1)]
    samplers = [
        Sampler(env_id, {}, policy.spec(), horizon, backend=backend, num_workers=workers)
        for backend, workers in configs
    ]
    mujoco_family = hasattr(family, "model")
    try:
        for sampler in samplers:  # warm-up: builds the envs
            timed_sample(sampler, tasks, params, episodes, 0)
        raw_rates, raw_parallel, rates = [], [], [[] for _ in configs]
        for round_ in range(rounds):
            for index, sampler in enumerate(samplers):  # same seed: the same episodes
                rate, batch = timed_sample(sampler, tasks, params, episodes, round_ + 1)
                rates[index].append(rate)
            if mujoco_family:  # the physics of exactly these episodes, bare
                seeds = slot_seeds(seeding.seed_sequence(0, seeding.SAMPLING, round_ + 1), tasks_n * episodes)
                jobs = replays(env_id, batch, seeds[:, 0])
                raw_rates.append(batch.env_steps / replay_seconds(env_id, jobs, 1))
                raw_parallel.append(batch.env_steps / replay_seconds(env_id, jobs, max_workers))
    finally:
        for sampler in samplers:
            sampler.close()
    raw = float(np.median(raw_rates)) if mujoco_family else None
    medians = [float(np.median(r)) for r in rates]
    one_worker = medians[configs.index(("processes", 1))]
    print(f"\n{env_id}: {tasks_n} tasks x {episodes} episodes x horizon {horizon}, policy 100x100 relu;")
    print(f"medians over {rounds} interleaved rounds")
    if raw is not None:
        print(f"(a) raw physics of the same episodes: {raw:,.0f} mj_step(frame_skip)/s on one core")
        parallel = float(np.median(raw_parallel))
        print(
            f"    (on {max_workers} cores in parallel: {parallel:,.0f}/s, the machine's own scaling "
            f"{parallel / raw:.2f}x)"
        )
    header = ("backend", "workers", "env-steps/s", "(c) per worker / raw", "(d) vs 1 worker")
    print(" | ".join(f"{name:>{width}}" for name, width in zip(header, (10, 7, 11, 20, 15))))
    print("-" * 78)
    for (backend, workers), rate in zip(configs, medians):
        per_core = f"{rate / workers / raw:.2f}" if raw else "-"
        scaling = f"{rate / one_worker:.2f}x" if backend == "processes" else "-"
        print(f"{backend:>10} | {workers:>7d} | {rate:>11,.0f} | {per_core:>20} | {scaling:>15}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", action="append", help="task family (repeatable)")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--with-local", action="store_true", help="also measure the in-process backend")
    parser.add_argument("--max-workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    env_ids = args.env or ["metarl/HalfCheetahVel-v0", "metarl/AntVel-v0", "metarl/Navigation2D-v0"]
    print(f"{os.cpu_count()} cores")
    for env_id in env_ids:
        horizon = 100 if "Navigation" in env_id else args.horizon
        episodes = 20 if "Navigation" in env_id else args.episodes
        tasks_n = 20 if "Navigation" in env_id else args.tasks
        benchmark(env_id, tasks_n, episodes, horizon, args.rounds, args.max_workers, args.with_local)


if __name__ == "__main__":
    main()
