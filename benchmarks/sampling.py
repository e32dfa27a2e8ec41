"""Sampler throughput: env-steps/s of each backend on one meta-batch, measured in one run.

    python benchmarks/sampling.py                         # 2D navigation, paper meta-batch
    python benchmarks/sampling.py --env metarl/Navigation2D-v0 --tasks 20 --episodes 20

Prints env-steps/s (policy in the loop, whole episodes) for the in-process backend and the
process backend with 1..N workers, and each one's ratio to the in-process figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metarl import seeding  # noqa: E402
from metarl.policies import detach_params, make_policy, stack_params  # noqa: E402
from metarl.sampling import Sampler  # noqa: E402
from metarl.tasks import family_of, sample_train_tasks  # noqa: E402


def measure(sampler: Sampler, tasks, params, episodes: int, repeats: int) -> float:
    """Median env-steps/s over `repeats` sample calls (after one warm-up call)."""
    sampler.sample(tasks, params, episodes, seeding.seed_sequence(0, seeding.SAMPLING, 0))
    rates = []
    for repeat in range(repeats):
        start = time.perf_counter()
        batch = sampler.sample(
            tasks, params, episodes, seeding.seed_sequence(0, seeding.SAMPLING, repeat + 1)
        )
        rates.append(batch.env_steps / (time.perf_counter() - start))
    return sorted(rates)[len(rates) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="metarl/Navigation2D-v0")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    family = family_of(args.env)
    policy = make_policy(family.observation_space, family.action_space, [64, 64], "relu", 1.0)
    tasks = sample_train_tasks(family, args.tasks, seed=0, iteration=0)
    params = detach_params(stack_params(policy.params(), args.tasks))
    print(
        f"{args.env}: {args.tasks} tasks x {args.episodes} episodes x horizon {args.horizon}, "
        f"policy 64x64 relu, {os.cpu_count()} cores"
    )
    rows = []
    with Sampler(args.env, {}, policy.spec(), args.horizon, backend="local") as sampler:
        rows.append(("local", 1, measure(sampler, tasks, params, args.episodes, args.repeats)))
    for workers in range(1, args.max_workers + 1):
        with Sampler(
            args.env, {}, policy.spec(), args.horizon, backend="processes", num_workers=workers
        ) as sampler:
            rows.append(("processes", workers, measure(sampler, tasks, params, args.episodes, args.repeats)))
    baseline = rows[0][2]
    print(f"{'backend':>10} | {'workers':>7} | {'env-steps/s':>12} | {'vs local':>8}")
    print("-" * 48)
    for backend, workers, rate in rows:
        print(f"{backend:>10} | {workers:>7d} | {rate:>12,.0f} | {rate / baseline:>7.2f}x")


if __name__ == "__main__":
    main()
