"""Wall time of one paper-sized MAML-TRPO meta-iteration, against pure physics time.

    python benchmarks/meta_iteration.py                      # HalfCheetahVel, the paper's sizes
    python benchmarks/meta_iteration.py --iterations 3 --workers 2

One meta-iteration on HalfCheetahVel with the preset's sizes (40 tasks x 20 episodes x 200
steps, before and after one adaptation step: 320k MuJoCo steps), split into
- sampling: the two sampler calls (pre- and post-adaptation episodes);
- inner adaptation: advantages, inner loss and its gradient (with graph), adapted params;
- outer update: surrogate, meta-gradient, conjugate gradient and the line search;
- other: the rest (task sampling, metrics).
The reference is the pure physics time of the same steps: the iteration's episodes
replayed exactly (same reset states and actions) in bare ``mj_step`` loops at the env's
frame skip, in parallel on all workers' cores, so the machine's own scaling is in it (see
benchmarks/physics.py). Iterations after the first are timed (the first builds the envs).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from physics import replay_seconds, replays

from metarl.agent import build
from metarl.config import load_config
from metarl.episodes import Episodes
from metarl.seeding import slot_seeds
from metarl.tasks import sample_train_tasks

PRESET = Path(__file__).resolve().parents[1] / "configs" / "maml_trpo_halfcheetah_vel.yaml"


class RecordingSampler:
    """Passes sample calls through to a sampler, keeping what the physics replay needs."""

    def __init__(self, sampler) -> None:
        self.sampler = sampler
        self.calls: list[tuple[Episodes, np.ndarray]] = []

    def sample(self, tasks, params, episodes_per_task, seed_sequence) -> Episodes:
        episodes = self.sampler.sample(tasks, params, episodes_per_task, seed_sequence)
        reset_seeds = slot_seeds(seed_sequence, len(tasks) * episodes_per_task)[:, 0]
        self.calls.append((episodes, reset_seeds))
        return episodes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=str(PRESET))
    parser.add_argument("--iterations", type=int, default=2, help="timed meta-iterations (after one warm-up)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("overrides", nargs="*", help="config key=value overrides")
    args = parser.parse_args()
    config = load_config(args.config, [*args.overrides, f"num_workers={args.workers}"])
    agent, family, sampler = build(config)
    recorder = agent.sampler = RecordingSampler(sampler)
    rows, physics_times = [], []
    with sampler:
        for iteration in range(args.iterations + 1):
            recorder.calls.clear()
            start = time.perf_counter()
            tasks = sample_train_tasks(family, config.meta_batch_size, config.seed, iteration)
            metrics = agent.train_step(tasks, iteration)
            total = time.perf_counter() - start
            if iteration > 0:
                rows.append((metrics, total))
                jobs = [
                    job
                    for episodes, seeds in recorder.calls
                    for job in replays(config.env_id, episodes, seeds)
                ]
                physics_times.append(replay_seconds(config.env_id, jobs, args.workers))
    steps = int(rows[0][0]["charts/iteration_env_steps"])

    # the breakdown of the iteration with the median total (so that the parts add up)
    order = np.argsort([t for _, t in rows])
    metrics, total = rows[int(order[len(order) // 2])]
    parts = {
        "sampling": metrics["time/sample_s"],
        "inner adaptation": metrics["time/adapt_s"],
        "outer update": metrics["time/update_s"],
    }
    parts["other"] = total - sum(parts.values())
    physics = physics_times[int(order[len(order) // 2])]
    print(
        f"\n{config.env_id}: {config.meta_batch_size} tasks x {config.episodes_per_task} episodes x "
        f"{config.horizon} steps, {config.num_inner_steps} inner step(s), {args.workers} workers; "
        f"the median of {len(rows)} meta-iterations"
    )
    print(f"{'part':>18} | {'seconds':>8} | {'share':>6}")
    print("-" * 40)
    for name, seconds in parts.items():
        print(f"{name:>18} | {seconds:8.2f} | {seconds / total:6.1%}")
    print(f"{'whole iteration':>18} | {total:8.2f} |")
    print(f"\npure physics time for its {steps:,} steps on {args.workers} cores: {physics:.2f} s")
    totals = [round(t, 2) for _, t in rows]
    print(f"(all timed iterations: totals {totals} s, physics {[round(p, 2) for p in physics_times]} s)")
    print(f"whole iteration / physics: {total / physics:.2f}x (target <= 1.5x)")
    print(f"sampling / physics: {parts['sampling'] / physics:.2f}x")


if __name__ == "__main__":
    main()
