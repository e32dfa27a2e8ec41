"""Can the RL2 GRU learn a good bandit strategy at all, given the answer? Behaviour cloning.

    python research/bandit_imitation.py                         # (100, 10), greedy teacher
    python research/bandit_imitation.py --arms 10 --pulls 100 --teacher gittins --iterations 600
    python research/bandit_imitation.py --hidden 64 --lr 3e-3 --iterations 300 --reward-by-action

Trains the RL2 policy network (`RecurrentPolicy`, the presets' GRU) by supervised learning,
not RL: each iteration draws `--batch` fresh Bernoulli bandits, plays the teacher
(posterior-greedy, or the Gittins index policy) on them, and takes one Adam step on the
cross-entropy of the teacher's arms given the same (action, reward, done) inputs RL2 sees.
Every `--report-every` iterations it prints the loss (nats per pull) and the clone's
expected trial total when it plays by itself (sampled arms, each pull scored by the chosen
arm's mean) on `--eval-bandits` fixed bandits, next to the teacher's and random play's on
those bandits.

Where an RL2 run stays far below the classical baselines, this separates the two causes:
if the clone, given the teacher's every decision, also learns slowly, the network's
learning of per-arm statistics is the bottleneck, not RL's exploration. `--reward-by-action`
clones into a policy whose GRU also reads (previous arm one-hot x previous reward), the
presets' `rnn_reward_by_action`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator

import numpy as np
import torch
from metarl.agents.classical import BanditPolicy, bandit_pulls, gittins_policy, greedy_policy

from metarl import seeding
from metarl.policies import RecurrentPolicy


def make_teacher(name: str, num_pulls: int) -> BanditPolicy:
    """ "greedy" (posterior mean) or "gittins" (index at discount 0.98) for `num_pulls` pulls."""
    return greedy_policy() if name == "greedy" else gittins_policy(0.98, num_pulls)


def eval_bandits(seed: int, num_bandits: int, num_arms: int) -> tuple[np.ndarray, np.random.Generator]:
    """The fixed bandits every report plays [num_bandits, num_arms], and the generator, as
    it stands after drawing them, for their pulls."""
    rng = seeding.generator(seed, seeding.EVAL_SAMPLING)
    return rng.random((num_bandits, num_arms)), rng


def imitation_loss(policy: RecurrentPolicy, arms: np.ndarray, rewards: np.ndarray) -> torch.Tensor:
    """Mean cross-entropy (nats per pull) of the teacher's `arms` [N, n] under `policy`, fed
    the trials' own previous arms and rewards."""
    num_bandits, num_pulls = arms.shape
    actions = torch.as_tensor(arms, dtype=torch.float32)[..., None]
    rewards_tensor = torch.as_tensor(rewards, dtype=torch.float32)
    starts = torch.zeros(num_bandits, num_pulls)
    starts[:, 0] = 1.0
    inputs = policy.trial_inputs(
        torch.zeros(num_bandits, num_pulls, policy.obs_dim), actions, rewards_tensor, starts
    )
    return -policy.log_prob(policy.action_distribution(inputs), actions).mean()


@torch.no_grad()
def play(policy: RecurrentPolicy, means: np.ndarray, num_pulls: int, rng: np.random.Generator) -> float:
    """Mean expected trial total (sum of chosen arms' means) of `policy` sampling its own
    arms on bandits `means` [N, k]."""
    num_bandits, num_arms = means.shape
    rows = np.arange(num_bandits)
    hidden = policy.initial_hidden(num_bandits)
    obs = torch.zeros(num_bandits, policy.obs_dim)  # a bandit has no state
    previous = torch.zeros(num_bandits, policy.input_dim - policy.obs_dim)
    total = np.zeros(num_bandits)
    for _ in range(num_pulls):
        dist, hidden = policy.step(torch.cat([obs, previous], dim=1), hidden)
        arm = policy.sample_with_noise(dist, torch.from_numpy(rng.random(num_bandits, dtype=np.float32)))
        arm_index = arm[:, 0].long().numpy()
        reward = rng.random(num_bandits) < means[rows, arm_index]
        total += means[rows, arm_index]
        previous = policy.previous_step_inputs(
            obs, arm, torch.as_tensor(reward, dtype=torch.float32), torch.zeros(num_bandits)
        )
    return float(total.mean())


def imitate(
    num_arms: int,
    num_pulls: int,
    teacher_name: str,
    iterations: int,
    batch: int,
    hidden_size: int,
    lr: float,
    eval_bandits_count: int,
    report_every: int,
    seed: int,
    reward_by_action: bool = False,
) -> Iterator[dict[str, float]]:
    """Clone the teacher; yields a row per report: iteration, loss, the clone's total."""
    teacher = make_teacher(teacher_name, num_pulls)
    policy = RecurrentPolicy(
        1,
        num_arms,
        True,
        hidden_size,
        generator=seeding.torch_generator(seed, seeding.POLICY_INIT),
        reward_by_action=reward_by_action,
    )
    optimizer = torch.optim.Adam(policy.policy_parameters(), lr=lr)
    data_rng = seeding.generator(seed, seeding.SAMPLING)
    eval_means, eval_rng = eval_bandits(seed, eval_bandits_count, num_arms)
    play_state = eval_rng.bit_generator.state  # every report plays the same reward draws
    for iteration in range(1, iterations + 1):
        arms, rewards = bandit_pulls(data_rng.random((batch, num_arms)), num_pulls, teacher, data_rng)
        loss = imitation_loss(policy, arms, rewards)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if iteration % report_every == 0 or iteration == iterations:
            eval_rng.bit_generator.state = play_state
            yield {
                "iteration": iteration,
                "loss": float(loss.detach()),
                "clone": play(policy, eval_means, num_pulls, eval_rng),
            }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arms", type=int, default=10)
    parser.add_argument("--pulls", type=int, default=100)
    parser.add_argument("--teacher", choices=("greedy", "gittins"), default="greedy")
    parser.add_argument("--iterations", type=int, default=600, help="Adam steps, one batch each")
    parser.add_argument("--batch", type=int, default=200, help="teacher trials per step")
    parser.add_argument("--hidden", type=int, default=256, help="GRU units (the presets': 256)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-bandits", type=int, default=1000)
    parser.add_argument("--report-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reward-by-action", action="store_true", help="the GRU also reads arm one-hot x reward"
    )
    args = parser.parse_args(argv)
    if min(args.arms, args.pulls, args.iterations, args.batch, args.hidden, args.eval_bandits) < 1:
        parser.error("--arms, --pulls, --iterations, --batch, --hidden and --eval-bandits must be >= 1")

    eval_means, eval_rng = eval_bandits(args.seed, args.eval_bandits, args.arms)
    teacher_arms, _ = bandit_pulls(eval_means, args.pulls, make_teacher(args.teacher, args.pulls), eval_rng)
    teacher_total = np.take_along_axis(eval_means, teacher_arms, axis=1).sum(1).mean()
    print(
        f"({args.pulls} pulls, {args.arms} arms), teacher {args.teacher}: "
        f"{teacher_total:.2f} on {args.eval_bandits} bandits; random: "
        f"{eval_means.mean(1).sum() / args.eval_bandits * args.pulls:.2f}"
    )
    print(
        f"{'iteration':>9} | {'trials seen':>11} | {'loss (nats/pull)':>16} | {'clone total':>11} "
        f"| {'time':>6}"
    )
    start = time.perf_counter()
    for row in imitate(
        args.arms,
        args.pulls,
        args.teacher,
        args.iterations,
        args.batch,
        args.hidden,
        args.lr,
        args.eval_bandits,
        args.report_every,
        args.seed,
        args.reward_by_action,
    ):
        print(
            f"{row['iteration']:>9d} | {row['iteration'] * args.batch:>11d} | {row['loss']:>16.3f} "
            f"| {row['clone']:>11.2f} | {time.perf_counter() - start:>5.0f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
