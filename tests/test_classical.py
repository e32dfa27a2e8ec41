"""Classical bandit and MDP baselines: known Gittins indices, exact optima, published values."""

from __future__ import annotations

import numpy as np
import pytest
from metarl.agents.classical import (
    bandit_baselines,
    chosen_arm_means,
    gittins_table,
    mdp_baselines,
    mdp_trials,
    optimal_episode_return,
    play_bandits,
    play_mdps,
    random_policy,
)
from metarl.envs.bandit import sample_bandit_tasks
from metarl.envs.tabular_mdp import sample_mdp_tasks


def test_gittins_indices_match_the_published_table():
    """Gittins' Bernoulli table (Beta(a, b) posterior): discount 0.9 gives 0.7029 for
    Beta(1, 1), 0.6346 for Beta(2, 2), 0.6010 for Beta(3, 3), 0.8695 for Beta(10, 2);
    discount 0.99 gives 0.8699 for Beta(1, 1)."""
    table = gittins_table(0.9, 20)
    for (a, b), index in {(1, 1): 0.7029, (2, 2): 0.6346, (3, 3): 0.6010, (10, 2): 0.8695}.items():
        assert table[a, b] == pytest.approx(index, abs=1e-4), (a, b)
    assert gittins_table(0.99, 20)[1, 1] == pytest.approx(0.8699, abs=1e-4)
    # more successes raise the index, more failures lower it
    assert table[3, 1] > table[2, 1] > table[1, 1] > table[1, 2] > table[1, 3]


def test_value_iteration_optimum_on_a_hand_solved_mdp():
    """State 0: action 0 pays 1 and stays, action 1 pays 0 and moves to state 1, which pays
    3 per step forever. Over 3 steps the optimum moves first: 0 + 3 + 3 = 6; over 1 step it
    stays: 1."""
    task = {
        "transitions": [[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]],
        "reward_means": [[1.0, 0.0], [3.0, 3.0]],
    }
    assert optimal_episode_return([task], 3)[0] == pytest.approx(6.0)
    assert optimal_episode_return([task], 1)[0] == pytest.approx(1.0)


def test_bandit_baselines_reproduce_the_rl2_papers_values():
    """n = 10 pulls, k = 5 arms, 1000 bandits: the RL2 paper reports random 5.0, Gittins 6.6,
    Thompson 5.7, UCB1 6.7, epsilon-greedy 6.6, greedy 6.6 (standard error here about 0.06)."""
    tasks = sample_bandit_tasks(1000, np.random.default_rng(0), 5, "bernoulli")
    tuning = sample_bandit_tasks(1000, np.random.default_rng(1), 5, "bernoulli")
    results = bandit_baselines(tasks, tuning, 10, seed=3)
    paper = {
        "random": 5.0,
        "Gittins": 6.6,
        "Thompson": 5.7,
        "UCB1": 6.7,
        "epsilon-greedy": 6.6,
        "greedy": 6.6,
    }
    for name, value in paper.items():
        assert results[name]["totals"].mean() == pytest.approx(value, abs=0.2), name
    # random's expectation is exact: n times the mean arm mean
    expected = 10 * np.mean([task["means"] for task in tasks])
    random_totals, random_expected = play_bandits(tasks, 10, random_policy(), np.random.default_rng(4))
    assert random_totals.mean() == pytest.approx(expected, abs=4 * random_totals.std() / np.sqrt(1000))
    # the chosen arms' means have the same expectation, with less spread
    assert random_expected.mean() == pytest.approx(expected, abs=4 * random_expected.std() / np.sqrt(1000))
    assert random_expected.std() < 0.9 * random_totals.std()
    for name in paper:  # the same expectation for every policy, within the reward noise
        gap = results[name]["totals"] - results[name]["expected_totals"]
        assert abs(gap.mean()) < 4 * gap.std() / np.sqrt(1000), name


def test_chosen_arm_means_sums_the_pulled_arms_means_over_valid_pulls():
    tasks = [{"means": [0.1, 0.9, 0.5]}, {"means": [0.2, 0.3, 0.4]}]
    arms = np.array([[1, 1, 2, 0], [0, 2, 2, 1]])
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    np.testing.assert_allclose(chosen_arm_means(tasks, arms, mask), [0.9 + 0.9 + 0.5 + 0.1, 0.2 + 0.4])
    # play_bandits' expected total is this sum over the arms its policy pulled
    pulled = []

    def record_first_arm(sums, pulls, t, rng):
        arms = np.zeros(len(sums), dtype=np.int64) + t % 3
        pulled.append(arms)
        return arms

    _, expected = play_bandits(tasks, 4, record_first_arm, np.random.default_rng(0))
    np.testing.assert_allclose(expected, chosen_arm_means(tasks, np.stack(pulled, 1), np.ones((2, 4))))


def test_psrl_learns_within_a_trial_and_stays_below_the_optimum():
    tasks = sample_mdp_tasks(300, np.random.default_rng(0), 10, 5)
    results = mdp_baselines(tasks, num_episodes=10, episode_length=10, seed=1)
    psrl = results["PSRL"]["episode_returns"].mean(1)  # [episodes]
    random = results["random"]["episode_returns"].mean(1)
    optimum = results["optimal (knows the MDP)"]["episode_returns"].mean(1)
    assert psrl[-3:].mean() > psrl[:2].mean() + 2.0  # it learns across episodes
    assert psrl.sum() > random.sum() + 20.0
    assert psrl[-1] < optimum[-1]
    # random's expectation: 10 steps at mean reward mu ~ N(1, 1), about 10 per episode
    assert random.mean() == pytest.approx(10.0, abs=0.6)


def test_greedy_plans_on_the_posterior_mean_and_exploits_from_the_second_episode():
    """One state, two actions paying 5 and -5 (unit noise). Episode 1 plans on the N(1, 1)
    prior, where both actions tie, so it plays both at random. From then on the posterior
    mean of the better action is above the prior's 1 and the worse one's below it (or
    untried, at 1), so greedy plays the better one at every step."""
    task = {"transitions": [[[1.0], [1.0]]], "reward_means": [[5.0, -5.0]]}
    played = mdp_trials([task] * 500, 4, 5, np.random.default_rng(0), "greedy")
    assert (played.actions[:, :5] == 0).mean() == pytest.approx(0.5, abs=0.05)  # 2500 fair coins
    assert (played.actions[:, 5:] == 0).all()
    with pytest.raises(ValueError, match="unknown MDP policy"):
        play_mdps([task], 1, 5, np.random.default_rng(0), "optimistic")


def test_state_blind_greedy_cannot_learn_what_depends_on_the_state():
    """Two states; every action moves to the other one, so a trial alternates 0, 1, 0, ...
    Action 0 pays +3 in state 0 and -3 in state 1, action 1 the reverse (unit noise).
    Greedy learns each state's action and earns about +3 a step from the second episode on;
    state-blind greedy pools the rewards over the states, where both actions average 0, so
    its choice is no better than a coin toss per state."""
    task = {
        "transitions": [[[0.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]],
        "reward_means": [[3.0, -3.0], [-3.0, 3.0]],
    }
    per_step = {
        policy: mdp_trials([task] * 300, 6, 10, np.random.default_rng(2), policy).rewards[:, 10:].mean()
        for policy in ("greedy", "state_blind")
    }
    assert per_step["greedy"] > 2.7
    assert abs(per_step["state_blind"]) < 1.0


def test_mdp_trials_record_the_steps_that_make_the_returns():
    """Two states; action 0 stays, action 1 moves to the other state (deterministic). Each
    episode starts in state 0; the recorded states follow the recorded actions, and the
    recorded rewards sum to the episode returns."""
    task = {
        "transitions": [[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]],
        "reward_means": [[0.0, 1.0], [2.0, 0.0]],
    }
    episodes, length = 3, 4
    for policy in ("random", "psrl", "greedy", "state_blind"):
        played = mdp_trials([task] * 50, episodes, length, np.random.default_rng(1), policy)
        assert (played.states[:, ::length] == 0).all()
        states = played.states.reshape(50, episodes, length)
        actions = played.actions.reshape(50, episodes, length)
        expected_next = np.where(actions[..., :-1] == 0, states[..., :-1], 1 - states[..., :-1])
        np.testing.assert_array_equal(states[..., 1:], expected_next)
        np.testing.assert_allclose(
            played.rewards.reshape(50, episodes, length).sum(-1).T, played.episode_returns
        )


def test_greedy_beats_psrl_on_random_mdps_and_starts_at_random():
    """On the paper's random MDPs, planning on the posterior mean learns faster than PSRL's
    posterior draws (measured: 156.1 against 134.9 over 10 episodes on 1000 MDPs), and its
    first episode, planned on the prior alone, is as good as random."""
    tasks = sample_mdp_tasks(300, np.random.default_rng(0), 10, 5)
    results = mdp_baselines(tasks, num_episodes=10, episode_length=10, seed=1)
    greedy = results["greedy"]["episode_returns"]  # [episodes, tasks]
    random = results["random"]["episode_returns"]
    assert greedy[0].mean() == pytest.approx(random[0].mean(), abs=1.0)
    assert greedy.sum(0).mean() > results["PSRL"]["episode_returns"].sum(0).mean() + 10.0
    assert greedy[-1].mean() < results["optimal (knows the MDP)"]["episode_returns"][-1].mean()


def test_baselines_benchmark_prints_the_papers_settings():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    command = [
        sys.executable,
        "benchmarks/baselines.py",
        "--tasks",
        "200",
        "--bandits",
        "10x5",
        "--mdps",
        "10",
    ]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    bandit_row = next(line for line in result.stdout.splitlines() if line.startswith("| 10, 5 |"))
    assert bandit_row.count("±") == 6 and "/ 6.6" in bandit_row  # six policies, the paper's Gittins value
    mdp_row = next(line for line in result.stdout.splitlines() if line.startswith("| 10 |"))
    random_total, blind_total, psrl_total, greedy_total, optimum = (
        float(cell.split("±")[0]) for cell in mdp_row.split("|")[2:7]
    )
    assert random_total < blind_total < psrl_total < greedy_total < optimum
