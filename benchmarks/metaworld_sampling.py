"""Meta-World sampling throughput: metarl's sampler against Meta-World's own vector envs and
against the physics of the same episodes, measured in one run on the same cores.

    python benchmarks/metaworld_sampling.py              # ML1 reach-v3 and ML10; about 10 minutes
    python benchmarks/metaworld_sampling.py --bench ML1 --tasks 4 --episodes 2   # a quick look

A meta-batch is `--tasks` tasks (ML10: spread evenly over its 10 training classes) x
`--episodes` episodes of 500 steps, played with a Gaussian MLP policy (100, 100) in the loop,
one batched forward per step. Configurations, measured once per round, rounds interleaved
(this machine's speed drifts), medians reported:

  metarl      our sampler, process backend, one worker per core;
  mw-sync     ``gym.make_vec("Meta-World/ML1-train" | "Meta-World/ML10-train",
              vector_strategy="sync")``: one sub-env per task running its episodes one after
              another (Meta-World's meta-learning protocol), set to the same tasks;
  mw-async    the same with ``vector_strategy="async"`` (one process per sub-env);
  physics     the same episodes' physics alone on one core: Meta-World's reset, then per
              step its mocap and gripper control and 5 ``mj_step`` calls, without its
              reward or observation code. ``x cores`` is that times the core count.
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import metaworld  # noqa: F401  (registers Meta-World's own ids)
import mujoco
import numpy as np
import torch

from metarl import seeding
from metarl.episodes import Episodes
from metarl.policies import detach_params, make_policy, stack_params
from metarl.sampling import Sampler
from metarl.sampling.worker import to_env_actions
from metarl.tasks import family_of, sample_train_tasks

HORIZON = 500


def metarl_rate(sampler: Sampler, tasks, params, episodes: int, call: int) -> tuple[float, Episodes]:
    """(env-steps/s, episodes) of one sample call of our sampler."""
    start = time.perf_counter()
    batch = sampler.sample(tasks, params, episodes, seeding.seed_sequence(0, seeding.SAMPLING, call))
    return batch.env_steps / (time.perf_counter() - start), batch


def meta_world_rate(vector: gym.vector.VectorEnv, mw_tasks: list, policy, episodes: int) -> float:
    """Env-steps/s of Meta-World's vector env playing `episodes` episodes of each sub-env's
    task (autoreset), the policy (shared parameters) acting on all sub-envs every step."""
    vector.set_attr("tasks", [[task] for task in mw_tasks])
    vector.call("sample_tasks")  # each sub-env takes its (only) task
    params = detach_params(stack_params(policy.params(), vector.num_envs))  # one row per sub-env
    start = time.perf_counter()
    obs, _ = vector.reset()
    done = np.zeros(vector.num_envs, np.int64)
    steps = 0
    while (done < episodes).any():
        with torch.no_grad():
            dist = policy.distribution(torch.as_tensor(obs, dtype=torch.float32)[:, None], params)
            action = to_env_actions(dist.sample()[:, 0].numpy(), vector.single_action_space)
        obs, _, terminated, truncated, _ = vector.step(action)
        steps += int((done < episodes).sum())
        done += terminated | truncated
    return steps / (time.perf_counter() - start)


def physics_rate(family, tasks, batch: Episodes) -> float:
    """Env-steps/s of the physics alone replaying `batch`'s actions on one core."""
    seconds, steps = 0.0, 0
    for i, task in enumerate(tasks):
        family.set_task(task)
        env = family._env  # the Meta-World env of this task's class
        for k in range(batch.episodes_per_task):
            env.reset()
            model, data = env.model, env.data
            actions = to_env_actions(batch.actions[i, k].numpy(), env.action_space).astype(np.float64)
            length = int(batch.mask[i, k].sum())
            start = time.perf_counter()
            for action in actions[:length]:
                data.mocap_pos[0] = np.clip(
                    data.mocap_pos[0] + np.clip(action[:3], -1, 1) * env.action_scale,
                    env.mocap_low,
                    env.mocap_high,
                )
                data.ctrl[:] = (action[3], -action[3])
                mujoco.mj_step(model, data, env.frame_skip)
            seconds += time.perf_counter() - start
            steps += length
    return steps / seconds


def benchmark(bench: str, env_name: str, num_tasks: int, episodes: int, rounds: int, workers: int) -> None:
    env_id = f"metarl/MetaWorld-{bench}-v3"
    env_kwargs = {"env_name": env_name} if bench == "ML1" else {}
    family = family_of(env_id, env_kwargs)
    torch.manual_seed(0)
    policy = make_policy(family.observation_space, family.action_space, [100, 100], "tanh", 1.0)
    tasks = sample_train_tasks(family, num_tasks, seed=0, iteration=0)
    params = detach_params(stack_params(policy.params(), num_tasks))
    mw_tasks = [family.bench.resolve(task) for task in tasks]
    mw_id = f"Meta-World/{bench}-train"
    mw_kwargs = {"env_name": env_name} if bench == "ML1" else {}
    name = f"{bench} {env_name}".strip()
    print(f"\n{name}: {num_tasks} tasks x {episodes} episodes x {HORIZON} steps")
    # Meta-World's vector envs split each class's 50 tasks evenly over its sub-envs of that
    # class: keep a multiple of their number (the tasks are set to ours below anyway)
    per_class = num_tasks // len(family.train_task_groups)
    vectors = {
        strategy: gym.make_vec(
            mw_id,
            vector_strategy=strategy,
            meta_batch_size=num_tasks,
            total_tasks_per_cls=per_class * (50 // per_class),
            seed=0,
            **mw_kwargs,
        )
        for strategy in ("sync", "async")
    }
    rates: dict[str, list[float]] = {"metarl": [], "mw-sync": [], "mw-async": [], "physics": []}
    with Sampler(env_id, env_kwargs, policy.spec(), HORIZON, num_workers=workers) as sampler:
        metarl_rate(sampler, tasks, params, 1, 1000)  # warm-up: builds the workers' envs
        for round_index in range(rounds):
            rate, batch = metarl_rate(sampler, tasks, params, episodes, round_index)
            rates["metarl"].append(rate)
            for strategy, vector in vectors.items():
                rates[f"mw-{strategy}"].append(meta_world_rate(vector, mw_tasks, policy, episodes))
            rates["physics"].append(physics_rate(family, tasks, batch))
            print(
                f"  round {round_index + 1}: "
                + ", ".join(f"{name} {values[-1]:,.0f}" for name, values in rates.items())
            )
    for vector in vectors.values():
        vector.close()
    median = {name: float(np.median(values)) for name, values in rates.items()}
    cores = len(os.sched_getaffinity(0))
    print(f"  env-steps/s (median of {rounds} rounds, {workers} workers, {cores} cores):")
    for name in ("metarl", "mw-sync", "mw-async"):
        print(f"    {name:<9} {median[name]:>9,.0f}   metarl / this: {median['metarl'] / median[name]:5.2f}x")
    limit = median["physics"] * cores
    print(
        f"    physics   {median['physics']:>9,.0f} on one core, x {cores} cores = {limit:,.0f}; "
        f"metarl reaches {median['metarl'] / limit:.0%} of it"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bench", action="append", choices=["ML1", "ML10"], help="repeatable (default both)")
    parser.add_argument("--env-name", default="reach-v3", help="the ML1 task class")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    torch.set_num_threads(1)  # the policy forward of Meta-World's loops, as in our workers
    for bench in args.bench or ["ML1", "ML10"]:
        benchmark(
            bench,
            args.env_name if bench == "ML1" else "",
            args.tasks,
            args.episodes,
            args.rounds,
            args.workers,
        )


if __name__ == "__main__":
    main()
