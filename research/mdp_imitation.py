"""Can the RL2 GRU hold a good tabular-MDP strategy at all, given the answer? Behaviour cloning.

    python research/mdp_imitation.py                                  # n = 10, greedy teacher
    python research/mdp_imitation.py --teacher psrl --iterations 600 --lr 3e-3

Trains the policy network of an RL2 MDP preset (`--config`, default
preset `rl2_trpo_tabular_mdp_n10`: its GRU size and inputs) by supervised learning,
not RL: each iteration draws `--batch` fresh MDPs, plays the teacher on trials of the
preset's `episodes_per_trial` episodes (greedy: plan each episode on the posterior mean MDP;
PSRL: on a posterior draw; both from `agents/classical.py`), and takes one Adam step on the
cross-entropy of the teacher's actions given the same inputs RL2 sees. Every
`--report-every` iterations it prints that batch's loss (nats per step) and the clone's
trial total when it plays by itself on `--eval-tasks` held-out MDPs through the sampler, as
`evaluate.py` plays an RL2 run (the same MDPs as its report when the counts match: both
default to 1000), after the teacher's total on those MDPs as `evaluate.py` plays it.

`--save-run DIR` writes the clone as a run at iteration 0 (the config, and a checkpoint with
the cloned policy and an untrained value GRU; the teacher's trials are not counted in its
environment steps), so that RL2 can take over from it:
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
from metarl.agents.classical import MDPTrials, mdp_trials
from metarl.agents.rl2 import RL2
from metarl.envs.tabular_mdp import TabularMDPEnv

from metarl import seeding
from metarl.agent import build, is_recurrent
from metarl.checkpoint import run_state, save_checkpoint
from metarl.config import ConfigError, load_config, save_config
from metarl.evaluation import classical_baselines
from metarl.policies import RecurrentPolicy
from metarl.sampling import Sampler
from metarl.tasks import Task, family_of, sample_test_tasks

ROOT = Path(__file__).resolve().parents[1]

TEACHERS = {"greedy": "greedy", "psrl": "PSRL"}  # --teacher: its name among evaluate.py's baselines


def imitation_inputs(
    policy: RecurrentPolicy, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, episode_length: int
) -> torch.Tensor:
    """The inputs [N, T, input_dim] RL2 would build from trials with these states, actions
    (int) and rewards [N, T], episodes of `episode_length` steps back to back: states
    one-hot, as the env observes them."""
    num_trials, num_steps = states.shape
    observations = torch.nn.functional.one_hot(torch.as_tensor(states), policy.obs_dim).float()
    starts = torch.zeros(num_trials, num_steps)
    starts[:, ::episode_length] = 1.0
    return policy.trial_inputs(
        observations,
        torch.as_tensor(actions, dtype=torch.float32)[..., None],
        torch.as_tensor(rewards, dtype=torch.float32),
        starts,
    )


def imitation_loss(policy: RecurrentPolicy, played: MDPTrials, episode_length: int) -> torch.Tensor:
    """Mean cross-entropy (nats per step) of the teacher's actions under `policy`, given the
    inputs RL2 would see on the teacher's trials."""
    inputs = imitation_inputs(policy, played.states, played.actions, played.rewards, episode_length)
    actions = torch.as_tensor(played.actions, dtype=torch.float32)[..., None]
    return -policy.log_prob(policy.action_distribution(inputs), actions).mean()


def imitate(
    agent: RL2,
    sampler: Sampler,
    family: TabularMDPEnv,
    held_out: list[Task],
    teacher: str,
    iterations: int,
    batch: int,
    lr: float,
    report_every: int,
) -> Iterator[dict[str, float]]:
    """Clone the teacher into `agent`'s policy; yields a row per report: iteration, loss
    (of that iteration's batch), the clone's mean trial total on `held_out`."""
    config, policy = agent.config, agent.policy
    episode_length = min(family.episode_length, config.horizon)  # as the sampler cuts them
    optimizer = torch.optim.Adam(policy.policy_parameters(), lr=lr)
    data_rng = seeding.generator(config.seed, seeding.SAMPLING)
    with sampler:
        for iteration in range(1, iterations + 1):
            tasks = family.sample_tasks(batch, data_rng)
            played = mdp_trials(tasks, config.episodes_per_trial, episode_length, data_rng, teacher)
            loss = imitation_loss(policy, played, episode_length)
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
    parser.add_argument("--teacher", choices=sorted(TEACHERS), default="greedy")
    parser.add_argument("--iterations", type=int, default=600, help="Adam steps, one batch each")
    parser.add_argument("--batch", type=int, default=200, help="teacher trials per step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-tasks", type=int, default=1000, help="held-out MDPs per report")
    parser.add_argument("--report-every", type=int, default=100)
    parser.add_argument(
        "--save-run", metavar="DIR", help="save the clone as a run at iteration 0 here (a new directory)"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value (e.g. rnn_hidden_size=128)")
    args = parser.parse_args(argv)
    if min(args.iterations, args.batch, args.eval_tasks, args.report_every) < 1:
        parser.error("--iterations, --batch, --eval-tasks and --report-every must be >= 1")
    try:
        config = load_config(Path(args.config), args.overrides)
    except ConfigError as err:
        parser.error(str(err))
    family = family_of(config.env_id, config.env_kwargs)
    if not isinstance(family, TabularMDPEnv) or not is_recurrent(config):
        parser.error(f"{args.config} is not an RL2 tabular-MDP config ({config.agent} on {config.env_id})")
    run_dir = Path(args.save_run) if args.save_run else None
    if run_dir is not None and run_dir.exists() and any(run_dir.iterdir()):
        parser.error(f"--save-run {run_dir} is not empty; the clone would not be the run's latest checkpoint")

    held_out = sample_test_tasks(family, args.eval_tasks, config.seed)  # evaluate.py's, for its count
    teacher_total = classical_baselines(family, held_out, config, config.seed)[TEACHERS[args.teacher]]["mean"]
    print(
        f"{config.episodes_per_trial} episodes per trial, teacher {args.teacher}: "
        f"{teacher_total:.2f} on {args.eval_tasks} held-out MDPs (as evaluate.py plays it)"
    )
    print(
        f"{'iteration':>9} | {'trials seen':>11} | {'loss (nats/step)':>16} | {'clone total':>11} "
        f"| {'time':>6}"
    )
    start = time.perf_counter()
    agent, _, sampler = build(config)
    rows = imitate(
        agent,
        sampler,
        family,
        held_out,
        args.teacher,
        args.iterations,
        args.batch,
        args.lr,
        args.report_every,
    )
    for row in rows:
        print(
            f"{row['iteration']:>9d} | {row['iteration'] * args.batch:>11d} | {row['loss']:>16.3f} "
            f"| {row['clone']:>11.2f} | {time.perf_counter() - start:>5.0f}s",
            flush=True,
        )
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
        # env_steps 0: the teacher's trials are not counted as the run's environment steps
        state = run_state(0, 0, agent.state_dict(), config)
        print(f"saved the clone to {save_checkpoint(run_dir / 'checkpoints', state)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
