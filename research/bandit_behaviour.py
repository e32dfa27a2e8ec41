"""How a trained RL2 bandit agent plays, next to win-stay-lose-shift on the same bandits.

    python research/bandit_behaviour.py runs/reproduce/rl2_trpo_bandit_k10_n100 [RUN ...]
    python research/bandit_behaviour.py RUN --tasks 1000

Plays the run's policy on its held-out bandits as ``evaluate.py`` does (same tasks, same
sampling stream) and prints, per run:

- the mean trial total;
- how often it pulls the same arm again after a win and after a loss;
- how many distinct arms it tries in a trial, and the share of pulls on the best arm;
- of its switches after a loss, the share that go to an arm it has not tried yet;
- the share of pulls on an arm of highest posterior mean (Beta(1, 1) prior, "post. best");
- after a loss on an arm with no win and at least 3 losses, how often it pulls that arm
  again ("stay|0-for-3"; greedy never does);
- win-stay-lose-shift's total on the same bandits (stay after a 1, move to the next arm
  after a 0).

Where a run falls short of Gittins, this shows whether it explores too little (few arms
tried, a policy that a memoryless rule matches) or ignores the arms' records.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from metarl.agents.classical import posterior_means

import metarl  # noqa: F401  (registers the metarl/ ids)
from metarl.cli.evaluate import load_run_or_report
from metarl.evaluation import held_out_trials


def behaviour(arms: np.ndarray, rewards: np.ndarray, means: np.ndarray) -> dict[str, float]:
    """Statistics of pulls `arms` [trials, pulls] (int) with 0/1 `rewards` [trials, pulls] on
    bandits with arm `means` [trials, arms]."""
    stayed = arms[:, 1:] == arms[:, :-1]
    previous_reward = rewards[:, :-1]
    new_arm_after_loss = []
    for trial_arms, trial_rewards in zip(arms, rewards):
        seen = {trial_arms[0]}
        for t in range(1, len(trial_arms)):
            if trial_rewards[t - 1] == 0 and trial_arms[t] != trial_arms[t - 1]:
                new_arm_after_loss.append(trial_arms[t] not in seen)
            seen.add(trial_arms[t])
    # each pull's arm against the posterior (Beta(1, 1)) means of the pulls before it
    num_trials, num_arms = means.shape
    rows = np.arange(num_trials)
    successes, failures = np.zeros((num_trials, num_arms)), np.zeros((num_trials, num_arms))
    on_posterior_best, stay_on_losing_record = [], []
    for t in range(arms.shape[1]):
        posterior = posterior_means(successes, successes + failures, gaussian=False)
        on_posterior_best.append(posterior[rows, arms[:, t]] >= posterior.max(1) - 1e-12)
        if t > 0:  # after a loss on an arm with no win and at least 3 losses: pulled again?
            previous = arms[:, t - 1]
            losing = (successes[rows, previous] == 0) & (failures[rows, previous] >= 3)
            stay_on_losing_record.extend(stayed[losing, t - 1])
        successes[rows, arms[:, t]] += rewards[:, t]
        failures[rows, arms[:, t]] += 1.0 - rewards[:, t]
    return {
        "total": float(rewards.sum(1).mean()),
        "on_posterior_best": share(on_posterior_best),
        "stay_on_losing_record": share(stay_on_losing_record),
        "stay_after_win": share(stayed[previous_reward == 1]),
        "stay_after_loss": share(stayed[previous_reward == 0]),
        "arms_tried": float(np.mean([len(set(row)) for row in arms])),
        "best_arm_share": float((arms == means.argmax(1)[:, None]).mean()),
        "new_arm_after_loss": share(new_arm_after_loss),
    }


def share(events) -> float:
    """The fraction of true among `events` (booleans), or NaN when there are none."""
    events = np.asarray(events, dtype=bool)
    return float(events.mean()) if events.size else float("nan")


def win_stay_lose_shift(means: np.ndarray, num_pulls: int, rng: np.random.Generator) -> float:
    """Mean trial total of win-stay-lose-shift (start at arm 0, after a 0 move to the next
    arm) on bandits `means` [trials, arms]."""
    trials = np.arange(len(means))
    arm = np.zeros(len(means), dtype=np.int64)
    total = np.zeros(len(means))
    for _ in range(num_pulls):
        reward = rng.random(len(means)) < means[trials, arm]
        total += reward
        arm = np.where(reward, arm, (arm + 1) % means.shape[1])
    return float(total.mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", help="RL2 bandit run directories (or checkpoint files)")
    parser.add_argument("--tasks", type=int, help="held-out bandits (default: config eval_tasks)")
    args = parser.parse_args(argv)
    header = (
        f"{'run':>32} | {'total':>6} | {'stay|win':>8} | {'stay|loss':>9} | {'arms tried':>10} "
        f"| {'on best':>7} | {'new|switch':>10} | {'post. best':>10} | {'stay|0-for-3':>12} "
        f"| {'WSLS total':>10}"
    )
    print(header)
    print("-" * len(header))
    for run in args.runs:
        loaded = load_run_or_report(run)
        if loaded is None:
            return 2
        state, config = loaded
        if config.env_id != "metarl/Bandit-v0":
            print(f"error: {run} is not a bandit run ({config.env_id})", file=sys.stderr)
            return 2
        config.sampler_backend = "local"
        tasks, episodes = held_out_trials(state, config, args.tasks or config.eval_tasks)
        arms = episodes.actions[:, 0, :, 0].numpy().astype(np.int64)  # [trials, pulls]
        rewards = episodes.rewards[:, 0].numpy()
        means = np.array([task["means"] for task in tasks])
        stats = behaviour(arms, rewards, means)
        wsls = win_stay_lose_shift(means, arms.shape[1], np.random.default_rng(config.seed))
        print(
            f"{Path(run).name:>32} | {stats['total']:>6.2f} | {stats['stay_after_win']:>8.3f} "
            f"| {stats['stay_after_loss']:>9.3f} | {stats['arms_tried']:>6.2f} of {means.shape[1]:<2d}"
            f"| {stats['best_arm_share']:>7.3f} | {stats['new_arm_after_loss']:>10.3f} "
            f"| {stats['on_posterior_best']:>10.3f} | {stats['stay_on_losing_record']:>12.3f} | {wsls:>10.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
