"""Bandit and tabular-MDP task families: protocol, vector env == single env, reward formulas."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from metarl.envs.bandit import BanditEnv, BanditVectorEnv
from metarl.envs.tabular_mdp import TabularMDPEnv, TabularMDPVectorEnv

import metarl  # noqa: F401  (registers the metarl/ ids)

IDS = ["metarl/Bandit-v0", "metarl/GaussianBandit-v0", "metarl/TabularMDP-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_and_task_protocol(env_id):
    env = gym.make(env_id)
    check_env(env, skip_render_check=True)
    check_env(env.unwrapped, skip_render_check=True)
    family = env.unwrapped
    tasks = family.sample_tasks(3, np.random.default_rng(0))
    assert tasks == family.sample_tasks(3, np.random.default_rng(0))
    _, info = env.reset(options={"task": tasks[1]})
    assert info["task"] == tasks[1]
    env.reset()  # a plain reset (gymnasium's autoreset) keeps the task
    assert family.task == tasks[1]


def test_bad_tasks_and_actions_are_named():
    with pytest.raises(ValueError, match="3-armed bandit task"):
        BanditEnv(num_arms=3, task={"means": [0.1, 0.2]})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BanditEnv(num_arms=2, task={"means": [0.1, 1.5]})
    with pytest.raises(ValueError, match="unknown arm distribution"):
        BanditEnv(arms="poisson")
    with pytest.raises(ValueError, match="must sum to 1"):
        TabularMDPEnv(
            num_states=2,
            num_actions=1,
            task={"transitions": [[[0.5, 0.6]], [[1, 0]]], "reward_means": [[0], [0]]},
        )
    env = BanditEnv(num_arms=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not an arm"):
        env.step(3)


def _vector_equals_single(single_envs, vector, actions_of, steps):
    """Step single envs and the vector env side by side (NEXT_STEP autoreset on both)."""
    seeds = list(range(10, 10 + len(single_envs)))
    vector.set_attr("task", [env.task for env in single_envs])
    obs_v, _ = vector.reset(seed=seeds)
    obs_s = [env.reset(seed=seed)[0] for env, seed in zip(single_envs, seeds)]
    np.testing.assert_array_equal(obs_v, np.stack(obs_s))
    rng, ended = np.random.default_rng(0), np.zeros(len(single_envs), bool)
    for _ in range(steps):
        actions = actions_of(rng)
        obs_v, reward_v, term_v, trunc_v, _ = vector.step(actions)
        for i, env in enumerate(single_envs):
            if ended[i]:  # NEXT_STEP: this step resets the sub-env
                obs, reward, term, trunc = env.reset()[0], 0.0, False, False
            else:
                obs, reward, term, trunc, _ = env.step(int(actions[i]))
            np.testing.assert_array_equal(obs_v[i], obs)
            assert (reward_v[i], term_v[i], trunc_v[i]) == (reward, term, trunc)
            ended[i] = term or trunc


@pytest.mark.parametrize("arms", ["bernoulli", "gaussian"])
def test_bandit_vector_env_equals_single_envs(arms):
    singles = [BanditEnv(num_arms=4, num_pulls=5, arms=arms) for _ in range(6)]
    tasks = singles[0].sample_tasks(6, np.random.default_rng(1))
    for env, task in zip(singles, tasks):
        env.set_task(task)
    vector = BanditVectorEnv(6, num_arms=4, num_pulls=5, arms=arms)
    _vector_equals_single(singles, vector, lambda rng: rng.integers(0, 4, size=6), steps=23)


def test_tabular_mdp_vector_env_equals_single_envs():
    singles = [TabularMDPEnv(num_states=6, num_actions=3, episode_length=4) for _ in range(5)]
    tasks = singles[0].sample_tasks(5, np.random.default_rng(2))
    for env, task in zip(singles, tasks):
        env.set_task(task)
    vector = TabularMDPVectorEnv(5, num_states=6, num_actions=3, episode_length=4)
    _vector_equals_single(singles, vector, lambda rng: rng.integers(0, 3, size=5), steps=19)


def test_bandit_rewards_follow_the_arm_distributions():
    """Bernoulli: the mean reward of an arm is its probability; Gaussian: mean + N(0, 1)."""
    means = [0.1, 0.5, 0.85]
    vector = BanditVectorEnv(20000, num_arms=3, num_pulls=1)
    vector.set_attr("task", {"means": means})
    vector.reset(seed=0)
    arms = np.arange(20000) % 3
    rewards = vector.step(arms)[1]
    assert set(np.unique(rewards)) <= {0.0, 1.0}
    for arm, mean in enumerate(means):
        assert rewards[arms == arm].mean() == pytest.approx(mean, abs=0.02)  # ~5 s.e.
    gaussian = BanditVectorEnv(20000, num_arms=3, num_pulls=1, arms="gaussian")
    gaussian.set_attr("task", {"means": [-1.0, 0.0, 2.0]})
    gaussian.reset(seed=0)
    rewards = gaussian.step(arms)[1]
    for arm, mean in enumerate([-1.0, 0.0, 2.0]):
        assert rewards[arms == arm].mean() == pytest.approx(mean, abs=0.05)
        assert rewards[arms == arm].std() == pytest.approx(1.0, abs=0.05)


def test_tabular_mdp_transitions_and_rewards_follow_the_task():
    """From state 0, action a: next-state frequencies match P[0][a], rewards mu[0][a] + N(0, 1)."""
    env = TabularMDPEnv(num_states=4, num_actions=2, episode_length=1)
    task = env.sample_tasks(1, np.random.default_rng(3))[0]
    vector = TabularMDPVectorEnv(40000, num_states=4, num_actions=2, episode_length=1)
    vector.set_attr("task", task)
    obs, _ = vector.reset(seed=0)
    np.testing.assert_array_equal(obs, np.tile([1, 0, 0, 0], (40000, 1)))  # start state 0, one-hot
    actions = np.arange(40000) % 2
    next_obs, rewards, _, truncated, _ = vector.step(actions)
    assert truncated.all()
    for action in range(2):
        chosen = actions == action
        frequencies = next_obs[chosen].mean(0)
        np.testing.assert_allclose(frequencies, task["transitions"][0][action], atol=0.015)
        assert rewards[chosen].mean() == pytest.approx(task["reward_means"][0][action], abs=0.03)


def test_sampled_tasks_have_the_papers_distributions():
    tasks = TabularMDPEnv().sample_tasks(400, np.random.default_rng(4))
    means = np.array([t["reward_means"] for t in tasks])
    transitions = np.array([t["transitions"] for t in tasks])
    assert means.mean() == pytest.approx(1.0, abs=0.02) and means.std() == pytest.approx(1.0, abs=0.02)
    np.testing.assert_allclose(transitions.sum(-1), 1.0)
    assert transitions.mean() == pytest.approx(0.1) and transitions.var() == pytest.approx(9 / 1100, rel=0.05)
    probs = np.array(
        [t["means"] for t in BanditEnv(num_arms=10).sample_tasks(2000, np.random.default_rng(5))]
    )
    assert probs.min() >= 0 and probs.max() <= 1 and probs.mean() == pytest.approx(0.5, abs=0.01)
