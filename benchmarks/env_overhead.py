"""Cost of the task-family layer: env-steps/s of each locomotion family against the
gymnasium v5 env it subclasses, in a plain single-env loop, measured in one run.

    python benchmarks/env_overhead.py [--steps 5000] [--repeats 5]

Each measurement steps ``gym.make(id)`` (with its wrappers) with the same pre-drawn random
actions as its base env, resetting (same seed) at episode ends; repeats are interleaved
across envs and the median is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

import metarl  # noqa: F401  (registers the metarl/ ids)

PAIRS = {
    "HalfCheetah-v5": ["metarl/HalfCheetahVel-v0", "metarl/HalfCheetahDir-v0"],
    "Ant-v5": ["metarl/AntVel-v0", "metarl/AntDir-v0", "metarl/AntGoal-v0"],
}


def steps_per_second(env: gym.Env, actions: np.ndarray) -> float:
    env.reset(seed=0)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset(seed=0)
    return len(actions) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ids = [env_id for base, families in PAIRS.items() for env_id in (base, *families)]
    made = {env_id: gym.make(env_id, max_episode_steps=200) for env_id in ids}
    rng = np.random.default_rng(0)
    actions = {
        env_id: rng.uniform(-1, 1, (args.steps, *env.action_space.shape)).astype(np.float32)
        for env_id, env in made.items()
    }
    rates: dict[str, list[float]] = {env_id: [] for env_id in ids}
    for _ in range(args.repeats):
        for env_id in ids:
            rates[env_id].append(steps_per_second(made[env_id], actions[env_id]))
    median = {env_id: statistics.median(r) for env_id, r in rates.items()}
    print(f"single-env loop, {args.steps} steps x {args.repeats} repeats (median), episodes of 200 steps")
    print(f"{'env':>26} | {'env-steps/s':>11} | {'vs gymnasium':>12}")
    print("-" * 56)
    for base, families in PAIRS.items():
        print(f"{base:>26} | {median[base]:>11,.0f} | {1.0:>11.2f}x")
        for env_id in families:
            print(f"{env_id:>26} | {median[env_id]:>11,.0f} | {median[env_id] / median[base]:>11.2f}x")


if __name__ == "__main__":
    main()
