"""2D navigation family: protocol, formula, vector env equivalence."""

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from metarl.envs.navigation import Navigation2DEnv, Navigation2DVectorEnv

import metarl  # noqa: F401  (registers the metarl/ ids)
from metarl.tasks import TaskFamily, sample_test_tasks, sample_train_tasks

ENV_ID = "metarl/Navigation2D-v0"


def test_check_env_passes_on_registered_id():
    env = gym.make(ENV_ID)
    check_env(env, skip_render_check=True)  # the registered id, with its wrappers
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == 100
    assert isinstance(env.unwrapped, TaskFamily)


def test_reward_and_termination_follow_the_formula():
    rng = np.random.default_rng(0)
    env = gym.make(ENV_ID)
    for task in Navigation2DEnv.sample_tasks(5, rng):
        obs, info = env.reset(options={"task": task})
        goal = np.array(task["goal"])
        position = np.zeros(2)
        assert info["task"] == task and np.all(obs == 0)
        for t in range(100):
            action = rng.uniform(-0.3, 0.3, size=2)  # beyond the bounds: must be clipped
            obs, reward, terminated, truncated, info = env.step(action.astype(np.float32))
            position = position + np.clip(action.astype(np.float32), -0.1, 0.1)
            assert obs == pytest.approx(position, abs=1e-6)
            assert reward == pytest.approx(-np.linalg.norm(position - goal), abs=1e-6)
            assert terminated == bool(np.all(np.abs(position - goal) < 0.01))
            assert info["task"] == task
            if terminated or truncated:
                assert truncated == (t == 99 and not terminated)
                break


def test_reaching_the_goal_terminates():
    env = gym.make(ENV_ID)
    env.reset(options={"task": {"goal": [0.25, -0.15]}})
    for action in ([0.1, -0.1], [0.1, -0.05]):
        _, _, terminated, _, _ = env.step(np.array(action, np.float32))
        assert not terminated
    _, reward, terminated, _, _ = env.step(np.array([0.05, 0.0], np.float32))
    assert terminated and reward == pytest.approx(0.0, abs=1e-6)


def test_task_persists_across_resets_and_is_settable_through_vector_env():
    env = gym.make(ENV_ID)
    env.unwrapped.set_task({"goal": [0.3, 0.4]})
    _, info = env.reset()
    assert info["task"] == {"goal": [0.3, 0.4]}
    sync = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync")
    tasks = [{"goal": [0.1, 0.2]}, {"goal": [-0.3, 0.3]}]
    sync.set_attr("task", tasks)
    assert list(sync.get_attr("task")) == tasks
    sync.reset(seed=0)
    assert list(sync.get_attr("task")) == tasks  # survives reset
    json.dumps(tasks)


def test_task_sampling_uses_only_the_given_generator():
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    first = Navigation2DEnv.sample_tasks(10, np.random.default_rng(5))
    second = Navigation2DEnv.sample_tasks(10, np.random.default_rng(5))
    assert first == second
    assert np.array_equal(np.random.get_state()[1], state)
    goals = np.array([t["goal"] for t in first])
    assert goals.min() >= -0.5 and goals.max() <= 0.5


def test_train_and_test_streams_are_disjoint():
    family = Navigation2DEnv()
    train = {
        tuple(t["goal"]) for it in range(50) for t in sample_train_tasks(family, 20, seed=1, iteration=it)
    }
    test = {tuple(t["goal"]) for t in sample_test_tasks(family, 40, seed=1)}
    assert len(test) == 40 and not (train & test)
    assert sample_test_tasks(family, 40, seed=1) == sample_test_tasks(family, 40, seed=1)
    assert sample_train_tasks(family, 5, 1, 0) != sample_train_tasks(family, 5, 1, 1)


def test_vector_env_matches_single_envs_step_for_step():
    num_envs = 6
    rng = np.random.default_rng(1)
    tasks = Navigation2DEnv.sample_tasks(num_envs, rng)
    tasks[0] = {"goal": [0.02, 0.0]}  # terminates quickly: exercises autoreset
    vector = gym.make_vec(ENV_ID, num_envs=num_envs)
    assert isinstance(vector, Navigation2DVectorEnv)
    singles = [gym.make(ENV_ID) for _ in range(num_envs)]
    vector.set_attr("task", tasks)
    obs, _ = vector.reset(seed=0)
    single_obs = [env.reset(options={"task": task})[0] for env, task in zip(singles, tasks)]
    assert np.array_equal(obs, np.stack(single_obs))
    needs_reset = [False] * num_envs
    saw_termination = saw_truncation = False
    for _ in range(250):
        actions = rng.uniform(-0.12, 0.12, size=(num_envs, 2)).astype(np.float32)
        obs, rewards, terminated, truncated, info = vector.step(actions)
        for i, env in enumerate(singles):
            if needs_reset[i]:  # NEXT_STEP autoreset
                expected = (env.reset()[0], 0.0, False, False)
            else:
                expected = env.step(actions[i])[:4]
            assert np.array_equal(obs[i], expected[0])
            assert rewards[i] == expected[1]
            assert (terminated[i], truncated[i]) == (expected[2], expected[3])
            needs_reset[i] = bool(terminated[i] or truncated[i])
        saw_termination |= bool(terminated.any())
        saw_truncation |= bool(truncated.any())
        assert info["task"] == tasks
    assert saw_termination and saw_truncation


def test_vector_env_partial_reset_with_reset_mask():
    vector = gym.make_vec(ENV_ID, num_envs=3)
    vector.reset(seed=0)
    obs, *_ = vector.step(np.full((3, 2), 0.05, np.float32))
    obs, _ = vector.reset(options={"reset_mask": np.array([True, False, True])})
    assert np.array_equal(obs, np.array([[0, 0], [0.05, 0.05], [0, 0]], np.float32))
