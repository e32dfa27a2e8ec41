"""Wall time of one paper-sized MAML-TRPO meta-iteration, against pure physics time.

    python benchmarks/meta_iteration.py                      # HalfCheetahVel, the paper's sizes
    python benchmarks/meta_iteration.py --iterations 3 --workers 2

One meta-iteration on HalfCheetahVel with the preset's sizes (40 tasks x 20 episodes x 200
steps, before and after one adaptation step: 320k MuJoCo steps), split into
- sampling: the two sampler calls (pre- and post-adaptation episodes);
- inner adaptation: advantages, inner loss and its gradient (with graph), adapted params;
- outer update: surrogate, meta-gradient, conjugate gradient and the line search;
- other: the rest (task sampling, metrics).
The reference is the pure physics time of the same number of steps: bare ``mj_step`` loops
at the env's frame skip, run in parallel on all workers' cores (so the machine's own
scaling is in it). Iterations after the first are timed (the first builds the envs).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents import build  # noqa: E402
from metarl.config import load_config  # noqa: E402
from metarl.tasks import sample_train_tasks  # noqa: E402

PRESET = Path(__file__).resolve().parents[1] / "configs" / "maml_trpo_halfcheetah_vel.yaml"


def _physics_worker(env_id: str, steps: int, start_barrier, result_queue) -> None:
    import mujoco

    from metarl.tasks import family_of

    family = family_of(env_id)
    model, frame_skip = family.model, family.frame_skip
    data = mujoco.MjData(model)
    controls = np.random.default_rng(0).uniform(-1, 1, (steps, model.nu))
    start_barrier.wait()
    start = time.perf_counter()
    for control in controls:
        data.ctrl[:] = control
        mujoco.mj_step(model, data, nstep=frame_skip)
    result_queue.put(time.perf_counter() - start)


def physics_time(env_id: str, total_steps: int, workers: int) -> float:
    """Wall seconds for `total_steps` bare mj_steps split over `workers` parallel processes."""
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(target=_physics_worker, args=(env_id, total_steps // workers, barrier, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    times = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return max(times)


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
    rows = []
    with sampler:
        for iteration in range(args.iterations + 1):
            start = time.perf_counter()
            tasks = sample_train_tasks(family, config.meta_batch_size, config.seed, iteration)
            metrics = agent.train_step(tasks, iteration)
            total = time.perf_counter() - start
            if iteration > 0:
                rows.append((metrics, total))
    steps = int(rows[0][0]["charts/iteration_env_steps"])
    physics = float(np.median([physics_time(config.env_id, steps, args.workers) for _ in range(2)]))

    def median(key: str) -> float:
        return float(np.median([m[key] for m, _ in rows]))

    total = float(np.median([t for _, t in rows]))
    parts = {
        "sampling": median("time/sample_s"),
        "inner adaptation": median("time/adapt_s"),
        "outer update": median("time/update_s"),
    }
    parts["other"] = total - sum(parts.values())
    print(
        f"\n{config.env_id}: {config.meta_batch_size} tasks x {config.episodes_per_task} episodes x "
        f"{config.horizon} steps, {config.num_inner_steps} inner step(s), {args.workers} workers; "
        f"median of {len(rows)} meta-iterations"
    )
    print(f"{'part':>18} | {'seconds':>8} | {'share':>6}")
    print("-" * 40)
    for name, seconds in parts.items():
        print(f"{name:>18} | {seconds:8.2f} | {seconds / total:6.1%}")
    print(f"{'whole iteration':>18} | {total:8.2f} |")
    print(f"\npure physics time for its {steps:,} steps on {args.workers} cores: {physics:.2f} s")
    print(f"whole iteration / physics: {total / physics:.2f}x (target <= 1.5x)")
    print(f"sampling / physics: {parts['sampling'] / physics:.2f}x")


if __name__ == "__main__":
    main()
