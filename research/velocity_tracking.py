"""Does an RL2 HalfCheetahVel run track the target velocity, and from which step of a trial?

    python research/velocity_tracking.py runs/reproduce/rl2_ppo_halfcheetah_vel
    python research/velocity_tracking.py RUN --tasks 1000 --windows 0,20,50,200

Plays the run on its held-out tasks as ``evaluate.py`` does (same tasks, same sampling
stream) and prints, for each episode of the trial and each window of steps: the mean
forward velocity (the root's x velocity in the observation, m/s), the least-squares slope
of the per-task mean velocity on the target velocity (1: it runs at whatever speed is
asked; 0: the same speed for every task), and the mean |velocity - target| (m/s). A policy
that has learned to adapt tracks the target within the first episode, and from the first
steps of the second.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import metarl  # noqa: F401  (registers the metarl/ ids)
from metarl.agent import is_recurrent
from metarl.cli.evaluate import load_run_or_report
from metarl.evaluation import held_out_trials

ROOT_X_VELOCITY = 8  # index of qvel[0] in HalfCheetah's observation (qpos[1:], qvel)


def tracking(velocities: np.ndarray, targets: np.ndarray, start: int, stop: int) -> dict[str, float]:
    """Velocity tracking over steps [start, stop) of one episode: velocities [tasks, T] (m/s),
    targets [tasks] (m/s) -> {"mean_velocity", "slope", "mean_error"}."""
    per_task = velocities[:, start:stop].mean(1)
    slope = float(np.polyfit(targets, per_task, 1)[0])
    error = float(np.abs(velocities[:, start:stop] - targets[:, None]).mean())
    return {"mean_velocity": float(per_task.mean()), "slope": slope, "mean_error": error}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", help="an RL2 HalfCheetahVel run directory (or a checkpoint file)")
    parser.add_argument("--tasks", type=int, default=300, help="held-out tasks (default 300)")
    parser.add_argument("--windows", default="0,20,50,200", help="step boundaries of the windows")
    args = parser.parse_args(argv)
    loaded = load_run_or_report(args.run)
    if loaded is None:
        return 2
    state, config = loaded
    if not is_recurrent(config) or config.env_id != "metarl/HalfCheetahVel-v0":
        print(
            f"error: needs an RL2 HalfCheetahVel run, got {config.agent} on {config.env_id}", file=sys.stderr
        )
        return 2
    bounds = [int(x) for x in args.windows.split(",")]
    tasks, episodes = held_out_trials(state, config, args.tasks)
    velocities = episodes.observations[..., ROOT_X_VELOCITY].numpy()  # [tasks, K, T]
    targets = np.array([task["velocity"] for task in tasks])
    print(f"{args.run}: {len(tasks)} held-out tasks, target velocity ~ U[0, 2] m/s")
    header = (
        f"{'episode':>7} | {'steps':>9} | {'mean velocity':>13} | {'slope on target':>15} "
        f"| {'mean |v - target|':>17}"
    )
    print(header)
    print("-" * len(header))
    for episode in range(velocities.shape[1]):
        for start, stop in zip(bounds[:-1], bounds[1:]):
            row = tracking(velocities[:, episode], targets, start, stop)
            print(
                f"{episode + 1:>7} | {f'{start}-{stop}':>9} | {row['mean_velocity']:>13.2f} "
                f"| {row['slope']:>15.2f} | {row['mean_error']:>17.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
