"""Can the RL2 GRU hold a good tabular-MDP strategy at all, given the answer? Behaviour cloning.

    python benchmarks/mdp_imitation.py                                  # n = 10, greedy teacher
    python benchmarks/mdp_imitation.py --teacher psrl --iterations 600 --lr 3e-3

Trains the policy network of an RL2 MDP preset (`--config`, default
`configs/rl2_trpo_tabular_mdp_n10.yaml`: its GRU size and inputs) by supervised learning,
not RL: each iteration draws `--batch` fresh MDPs, plays the teacher on trials of the
preset's `episodes_per_trial` episodes (greedy: plan each episode on the posterior mean MDP;
PSRL: on a posterior draw; both from `agents/classical.py`), and takes one Adam step on the
cross-entropy of the teacher's actions given the same inputs RL2 sees. Every
`--report-every` iterations it prints the loss (nats per step) and the clone's trial total
when it plays by itself on the run's first `--eval-tasks` held-out MDPs, through the same
sampler and tasks as `evaluate.py`, next to the teacher's total on those MDPs.

`--save-run DIR` writes the clone as a run at iteration 0 (the config, and a checkpoint with
the cloned policy and an untrained value GRU), so that RL2 can take over from it:
`python train.py --resume DIR meta_iterations=N` trains it by RL on the same training tasks
as a fresh run of the config.

Where an RL2 run stays far below a classical baseline, this separates the two causes: if
the clone reaches the teacher, the network can represent the strategy and RL's optimisation
is what falls short; if it cannot, the network (or its inputs) is the bottleneck.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents import build  # noqa: E402
from agents.classical import mdp_trials  # noqa: E402
from agents.rl2 import RL2PPO  # noqa: E402
from envs.tabular_mdp import sample_mdp_tasks  # noqa: E402
from metarl import seeding  # noqa: E402
from metarl.checkpoint import save_checkpoint  # noqa: E402
from metarl.config import TrainConfig, load_config, save_config  # noqa: E402
from metarl.policies import RecurrentPolicy  # noqa: E402
from metarl.sampling import Sampler  # noqa: E402
from metarl.tasks import family_of, sample_test_tasks  # noqa: E402


def imitation_loss(
    policy: RecurrentPolicy, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, episode_length: int
) -> torch.Tensor:
    """Mean cross-entropy (nats per step) of the teacher's `actions` [N, T] under `policy`,
    fed the trials' own states [N, T] (one-hot, as the env observes them), previous actions
    and rewards [N, T]."""
    num_trials, num_steps = states.shape
    observations = torch.nn.functional.one_hot(torch.as_tensor(states), policy.obs_dim).float()
    action_tensor = torch.as_tensor(actions, dtype=torch.float32)[..., None]
    starts = torch.zeros(num_trials, num_steps)
    starts[:, ::episode_length] = 1.0
    inputs = policy.trial_inputs(
        observations, action_tensor, torch.as_tensor(rewards, dtype=torch.float32), starts
    )
    return -policy.log_prob(policy.action_distribution(inputs), action_tensor).mean()


def imitate(
    config: TrainConfig,
    agent: RL2PPO,
    sampler: Sampler,
    teacher: str,
    iterations: int,
    batch: int,
    lr: float,
    eval_tasks: int,
    report_every: int,
) -> Iterator[dict[str, float]]:
    """Clone the teacher into `agent`'s policy (built from `config`); yields a row per
    report: iteration, loss, the clone's mean trial total on the held-out MDPs."""
    policy = agent.policy
    kwargs = config.env_kwargs
    num_states, num_actions = kwargs.get("num_states", 10), kwargs.get("num_actions", 5)
    episode_length = kwargs.get("episode_length", 10)
    optimizer = torch.optim.Adam(policy.policy_parameters(), lr=lr)
    data_rng = seeding.generator(config.seed, seeding.SAMPLING)
    held_out = sample_test_tasks(family_of(config.env_id, kwargs), eval_tasks, config.seed)
    with sampler:
        for iteration in range(1, iterations + 1):
            tasks = sample_mdp_tasks(batch, data_rng, num_states, num_actions)
            played = mdp_trials(tasks, config.episodes_per_trial, episode_length, data_rng, teacher)
            loss = imitation_loss(policy, played.states, played.actions, played.rewards, episode_length)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if iteration % report_every == 0 or iteration == iterations:
                curve = agent.adaptation_curve(held_out, seed=config.seed)  # [episodes, tasks]
                yield {
                    "iteration": iteration,
                    "loss": float(loss.detach()),
                    "clone": float(curve.sum(0).mean()),
                }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=str(ROOT / "configs" / "rl2_trpo_tabular_mdp_n10.yaml"))
    parser.add_argument("--teacher", choices=("greedy", "psrl"), default="greedy")
    parser.add_argument("--iterations", type=int, default=600, help="Adam steps, one batch each")
    parser.add_argument("--batch", type=int, default=200, help="teacher trials per step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-tasks", type=int, default=1000, help="held-out MDPs per report")
    parser.add_argument("--report-every", type=int, default=100)
    parser.add_argument("--save-run", metavar="DIR", help="save the clone as a run at iteration 0 here")
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value (e.g. rnn_hidden_size=128)")
    args = parser.parse_args(argv)
    if min(args.iterations, args.batch, args.eval_tasks, args.report_every) < 1:
        parser.error("--iterations, --batch, --eval-tasks and --report-every must be >= 1")
    config = load_config(Path(args.config), args.overrides)
    if config.env_id != "metarl/TabularMDP-v0" or config.agent not in ("rl2_trpo", "rl2_ppo"):
        parser.error(f"{args.config} is not an RL2 tabular-MDP config")

    kwargs = config.env_kwargs
    family = family_of(config.env_id, kwargs)
    held_out = sample_test_tasks(family, args.eval_tasks, config.seed)
    teacher_rng = seeding.generator(config.seed, seeding.EVAL_SAMPLING)
    teacher = mdp_trials(
        held_out, config.episodes_per_trial, kwargs.get("episode_length", 10), teacher_rng, args.teacher
    )
    print(
        f"{config.episodes_per_trial} episodes per trial, teacher {args.teacher}: "
        f"{teacher.episode_returns.sum(0).mean():.2f} on {args.eval_tasks} held-out MDPs"
    )
    print(
        f"{'iteration':>9} | {'trials seen':>11} | {'loss (nats/step)':>16} | {'clone total':>11} "
        f"| {'time':>6}"
    )
    start = time.perf_counter()
    agent, _, sampler = build(config)
    for row in imitate(
        config,
        agent,
        sampler,
        args.teacher,
        args.iterations,
        args.batch,
        args.lr,
        args.eval_tasks,
        args.report_every,
    ):
        print(
            f"{row['iteration']:>9d} | {row['iteration'] * args.batch:>11d} | {row['loss']:>16.3f} "
            f"| {row['clone']:>11.2f} | {time.perf_counter() - start:>5.0f}s",
            flush=True,
        )
    if args.save_run:
        run_dir = Path(args.save_run)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
        state = {"iteration": 0, "env_steps": 0, "agent": agent.state_dict(), "config": config.to_dict()}
        print(f"saved the clone to {save_checkpoint(run_dir / 'checkpoints', state)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
