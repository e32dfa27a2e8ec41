"""Where a Meta-World env step's time goes (issue 27, "Speed"): one env per class named on
the command line, 2000 steps of uniform random actions, profiled with cProfile; prints the
share of the step spent in MuJoCo's physics, in the observation, in the reward and elsewhere.

    python research/metaworld_step_profile.py reach-v3 push-v3 pick-place-v3
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

import metaworld
import numpy as np

PARTS = {  # function name -> part of the step
    "mj_step": "physics (mj_step)",
    "mj_rnePostConstraint": "physics (mj_step)",
    "_get_obs": "observation",
    "evaluate_state": "reward",
}


def profile(env_name: str, steps: int = 2000) -> None:
    bench = metaworld.ML1(env_name, seed=0)
    env = bench.train_classes[env_name]()
    env.set_task(bench.train_tasks[0])
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 4)).astype(np.float32)

    def run() -> None:
        env.reset()
        for i, action in enumerate(actions):
            if i % 500 == 499:
                env.reset()
            env.step(action)

    start = time.perf_counter()
    run()
    plain = time.perf_counter() - start
    profiler = cProfile.Profile()
    profiler.runcall(run)
    stats = pstats.Stats(profiler).stats
    total = sum(tt for (_, _, name), (_, _, tt, _, _) in stats.items())
    shares = dict.fromkeys(PARTS.values(), 0.0)
    for (_, _, name), (_, _, _, cumulative, _) in stats.items():
        key = name.rstrip(">").split()[-1].split(".")[-1]  # "<built-in method mujoco._functions.mj_step>"
        if key in PARTS:
            shares[PARTS[key]] += cumulative
    other = total - sum(shares.values())
    print(f"{env_name}: {steps / plain:,.0f} steps/s unprofiled on one core")
    for part, seconds in {**shares, "other (resets, wrappers, clipping)": other}.items():
        print(f"  {part:<36} {100 * seconds / total:5.1f}% of the profiled time")


if __name__ == "__main__":
    for name in sys.argv[1:] or ["reach-v3"]:
        profile(name)
