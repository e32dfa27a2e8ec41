"""Split a MAML locomotion run's held-out return into its task term and its control cost.

    python research/reward_terms.py runs/<run>                  # 40 tasks, 0 and 1 steps
    python research/reward_terms.py runs/<run> --tasks 40 --steps 3 --episodes 10

Adapts the run's policy on held-out tasks as ``evaluate.py`` does (same tasks, same
sampling streams, same step sizes) and prints, after each gradient step, the mean episode
return, its control cost ``ctrl_cost_weight * sum_t |a_t|^2`` (computed from the recorded
actions, mapped onto the action bounds and clipped as the env receives them), the rest
(the task term, plus Ant's survive and contact terms), and the policy's per-joint standard
deviation. Where a run falls short of a published return, this says which term it loses.
"""

from __future__ import annotations

import argparse
import sys

import gymnasium as gym
import numpy as np
import torch

import metarl  # noqa: F401  (registers the metarl/ ids)
from metarl.agent import build, is_recurrent
from metarl.cli.evaluate import load_run_or_report
from metarl.episodes import Episodes
from metarl.evaluation import mean_and_stderr
from metarl.policies import Params
from metarl.sampling.worker import to_env_actions
from metarl.tasks import sample_test_tasks


def control_cost(episodes: Episodes, space: gym.spaces.Box, weight: float) -> np.ndarray:
    """Control cost per task, the mean over its episodes of weight * sum_t |a_t|^2: [tasks]."""
    actions = episodes.actions.numpy()
    env_actions = to_env_actions(actions.reshape(-1, *space.shape), space).reshape(actions.shape)
    per_step = weight * np.square(env_actions.astype(np.float64)).sum(-1) * episodes.mask.numpy()
    return per_step.sum(-1).mean(-1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", help="run directory (or a checkpoint file)")
    parser.add_argument("--tasks", type=int, help="held-out tasks (default: config eval_tasks)")
    parser.add_argument("--steps", type=int, default=1, help="gradient steps (default: 1)")
    parser.add_argument("--episodes", type=int, help="episodes per task (default: the config's)")
    args = parser.parse_args(argv)
    loaded = load_run_or_report(args.run)
    if loaded is None:
        return 2
    state, config = loaded
    if is_recurrent(config):
        print("error: reward_terms.py splits MAML runs' returns; this is an RL2 run", file=sys.stderr)
        return 2
    env = gym.make(config.env_id, **config.env_kwargs).unwrapped
    weight = getattr(env, "_ctrl_cost_weight", None)
    if weight is None:
        print(f"error: {config.env_id} has no control cost (not a locomotion family)", file=sys.stderr)
        return 2
    if args.episodes:
        config.episodes_per_task = args.episodes

    agent, family, sampler = build(config)
    agent.load_state_dict(state["agent"])
    tasks = sample_test_tasks(family, args.tasks or config.eval_tasks, config.seed)
    costs: list[np.ndarray] = []  # per step: [tasks]
    stds: list[torch.Tensor] = []  # per step: [tasks, act_dim]

    def record(step: int, params: Params, episodes: Episodes) -> None:
        costs.append(control_cost(episodes, env.action_space, weight))
        stds.append(params["log_std"].clamp(min=agent.policy.min_log_std).exp())

    with sampler:
        curve = agent.adaptation_curve(tasks, args.steps, config.eval_inner_lrs, config.seed, inspect=record)
    print(
        f"{config.env_id} {config.agent} (iteration {state['iteration']}, {len(tasks)} test tasks, "
        f"{config.episodes_per_task} episodes each; control cost weight {weight})"
    )
    print("| steps | return | task term and rest | control cost | policy std (min-max over joints) |")
    print("|---|---|---|---|---|")
    for step, (returns, cost, step_stds) in enumerate(zip(curve, costs, stds)):
        mean_std = step_stds.mean(0)
        cells = [mean_and_stderr(values) for values in (returns, returns + cost, -cost)]
        text = [f"{cell['mean']:.2f} ± {cell['stderr']:.2f}" for cell in cells]
        print(f"| {step} | {' | '.join(text)} | {mean_std.min():.2f}-{mean_std.max():.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
