"""The Python API (metarl.train, load, evaluate, Agent.adapt, policy.act), a task family of
the user's own with every backend, and numbers unchanged by the library refactor."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import metarl
from metarl.cli.evaluate import main as evaluate_main

# The default run (`python train.py`) cut to 3 meta-iterations, with the exact curvature on
# every task (curvature_tasks=1.0, its default until issue 25), as the code before the library
# refactor (commit 84df0d0) printed it: progress.csv and the policy's weights.
DEFAULT_RUN_ROWS = [
    (-78.09527587890625, -72.72625732421875, -0.012492283247411251, 0.006233708001673222, 79002),
    (-59.99128723144531, -57.316585540771484, -0.01429398637264967, 0.006178963463753462, 158067),
    (-54.401031494140625, -46.61910629272461, -0.016760068014264107, 0.0078617874532938, 236634),
]
DEFAULT_RUN_WEIGHT_SUMS = {
    "w0": 1.2951964773237705,
    "b0": 3.4786923879291862,
    "w1": 7.784770241021761,
    "b1": 3.7912373514845967,
    "w2": 1.0465817167423666,
    "b2": -0.20429497957229614,
    "log_std": -0.02430911175906658,
}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """metarl.train as a user calls it: the default preset by name, keyword overrides."""
    root = tmp_path_factory.mktemp("runs")
    return metarl.train(
        "maml_trpo_navigation2d",
        meta_iterations=3,
        curvature_tasks=1.0,
        sampler_backend="local",
        run_root=str(root),
        progress=False,
    )


def test_default_run_equals_the_pre_refactor_code(default_run):
    keys = ("meta/return_pre_adapt", "meta/return_post_adapt", "losses/surrogate_after", "losses/kl")
    rows = [(*(row[key] for key in keys), int(row["charts/env_steps"])) for row in default_run.metrics]
    assert rows == DEFAULT_RUN_ROWS
    agent = metarl.load(default_run.path, sampler_backend="local")
    sums = {name: float(value.double().sum()) for name, value in agent.policy.state_dict().items()}
    assert sums == DEFAULT_RUN_WEIGHT_SUMS
    assert agent.iteration == 3 and default_run.path.name.startswith("Navigation2D-v0__maml_trpo__1__")


def test_evaluate_returns_what_the_cli_writes_and_adapt_gives_a_policy_that_acts(default_run, tmp_path):
    agent = metarl.load(default_run.path, sampler_backend="local")
    result = metarl.evaluate(agent, num_tasks=6, steps=2)
    assert len(result.mean_returns) == len(result.stderrs) == 3 and result.task_returns.shape == (3, 6)
    assert result.mean_returns == pytest.approx(result.task_returns.mean(1).tolist(), rel=1e-6)
    assert not list(default_run.path.glob("evaluation.json"))  # writes nothing unless asked
    assert evaluate_main([str(default_run.path), "--tasks", "6", "--steps", "2", "--out", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "evaluation.json").read_text())
    assert [row["mean_return"] for row in written["steps"]] == result.mean_returns

    env = gym.make("metarl/Navigation2D-v0")
    env.unwrapped.set_task(result.tasks[0])
    policy = agent.adapt(env, steps=1, seed=0)
    observation, _ = env.reset(seed=0)
    action = policy.act(observation)
    assert action.shape == env.action_space.shape and env.action_space.contains(action)
    assert policy.act(np.stack([observation] * 4)).shape == (4, *env.action_space.shape)
    # the adaptation moved the parameters, and the same seed adapts the same way
    before = agent.policy.params()
    assert any(not torch.equal(policy.params[k][0], before[k].detach()) for k in before)
    again = agent.adapt(env, steps=1, seed=0)
    assert all(torch.equal(again.params[k], policy.params[k]) for k in before)
    with pytest.raises(ValueError, match="rows of 2 values"):
        policy.act(np.zeros(3))
    agent.sampler.close()


def test_a_checkpoint_from_before_the_split_config_loads(default_run, tmp_path):
    """Checkpoints written before config.yaml held only the agent's keys hold every key."""
    from metarl.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(default_run.path)
    state["config"] = {**metarl.TrainConfig().to_dict(), **state["config"]}  # the old layout
    del state["format_version"]
    save_checkpoint(tmp_path / "checkpoints", state)
    agent = metarl.load(tmp_path, sampler_backend="local")
    assert agent.iteration == 3 and agent.config.max_kl == 0.01
    agent.sampler.close()


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(
        metarl.ConfigError, match="neither a file nor a preset; presets: .*maml_trpo_navigation2d"
    ):
        metarl.train("no_such_preset")
    with pytest.raises(metarl.ConfigError, match="unknown config key 'inner_lrr'.*did you mean inner_lr"):
        metarl.train(inner_lrr=0.1)
    with pytest.raises(metarl.ConfigError, match="unknown env id 'user/Nothing-v0'.*gym.register"):
        metarl.train(env_id="user/Nothing-v0")
    with pytest.raises(
        metarl.ConfigError, match="outer_lr in the overrides: agent maml_trpo does not read it"
    ):
        metarl.train({"agent": "maml_trpo", "outer_lr": 0.1})
    with pytest.raises(metarl.ConfigError, match="agent maml_trpo does not read outer_lr"):
        metarl.train(metarl.TrainConfig(outer_lr=0.1))


# ---- a task family of the user's own ------------------------------------------------------


def make_point_family():
    """A family defined inside a function (so workers cannot import it): a point on a line
    that must walk to its task's goal. Reward: minus the distance after the step."""

    class PointGoal(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

        def __init__(self):
            self._task = {"goal": 0.5}
            self.x = 0.0

        def sample_tasks(self, n, rng):
            return [{"goal": float(g)} for g in rng.uniform(-1.0, 1.0, n)]

        def set_task(self, task):
            self._task = dict(task)

        @property
        def task(self):
            return self._task

        @task.setter
        def task(self, task):
            self.set_task(task)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            if options and "task" in options:
                self.set_task(options["task"])
            self.x = 0.0
            return np.array([self.x], np.float32), {"task": self._task}

        def step(self, action):
            self.x = float(np.clip(self.x + 0.2 * float(np.asarray(action).ravel()[0]), -2, 2))
            reward = -abs(self.x - self._task["goal"])
            return np.array([self.x], np.float32), reward, False, False, {"task": self._task}

    return PointGoal


def make_arm_family():
    """A two-armed task defined inside a function: the rewarded arm is the task."""

    class RewardedArm(gym.Env):
        observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def __init__(self):
            self.task = {"arm": 0}

        def sample_tasks(self, n, rng):
            return [{"arm": int(a)} for a in rng.integers(0, 2, n)]

        def set_task(self, task):
            self.task = dict(task)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            if options and "task" in options:
                self.set_task(options["task"])
            return np.zeros(1, np.float32), {}

        def step(self, action):
            return np.zeros(1, np.float32), float(int(action) == self.task["arm"]), True, False, {}

    return RewardedArm


def _post_adaptation_return(run, tasks=40):
    agent = metarl.load(run.path, sampler_backend="local")
    with agent.sampler:
        return metarl.evaluate(agent, num_tasks=tasks).mean_returns[-1]


def test_a_family_of_ones_own_trains_maml_trpo_in_spawned_workers(tmp_path):
    gym.register("user/PointGoalLimited-v0", entry_point=make_point_family(), max_episode_steps=10)
    common = dict(
        env_id="user/PointGoalLimited-v0",
        horizon=10,
        meta_batch_size=10,
        episodes_per_task=10,
        hidden_sizes=[16, 16],
        inner_lr=0.5,
        eval_inner_lrs=[0.5],
        eval_steps=1,
        num_workers=2,
        run_root=str(tmp_path),
        progress=False,
    )
    # passed as a class, the family is registered as user/<name>-v0
    untrained = metarl.train(**{**common, "env_id": make_point_family()}, meta_iterations=1)
    assert untrained.config.env_id == "user/PointGoal-v0"
    trained = metarl.train(meta_iterations=15, **common)
    assert trained.config.sampler_backend == "processes"
    before, after = _post_adaptation_return(untrained), _post_adaptation_return(trained)
    assert after > before + 0.5, (before, after)


def test_a_family_of_ones_own_trains_rl2_ppo_in_spawned_workers(tmp_path):
    gym.register("user/RewardedArm-v0", entry_point=make_arm_family(), max_episode_steps=1)
    common = dict(
        env_id="user/RewardedArm-v0",
        agent="rl2_ppo",
        horizon=1,
        episodes_per_trial=4,
        meta_batch_size=64,
        rnn_hidden_size=16,
        outer_lr=0.01,
        num_workers=2,
        run_root=str(tmp_path),
        progress=False,
    )
    first = metarl.train(meta_iterations=1, **common)
    trained = metarl.train(meta_iterations=30, **common)
    assert _post_adaptation_return(trained, 200) > _post_adaptation_return(first, 200) + 0.2


def test_a_family_that_breaks_the_protocol_is_named_before_any_worker_starts():
    class NoTasks(gym.Env):
        observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

        def set_task(self, task):
            pass

    gym.register("user/NoTasks-v0", entry_point=NoTasks)
    with pytest.raises(metarl.ConfigError, match="lacks sample_tasks, task"):
        metarl.train(env_id="user/NoTasks-v0")


def test_an_rl2_agent_adapts_by_playing_and_keeps_its_hidden_state(tmp_path):
    run = metarl.train(
        "rl2_ppo_bandit_k5_n10",
        meta_iterations=1,
        meta_batch_size=16,
        rnn_hidden_size=8,
        sampler_backend="local",
        run_root=str(tmp_path),
        progress=False,
    )
    agent = metarl.load(run.path, sampler_backend="local")
    env = gym.make("metarl/Bandit-v0", num_arms=5, num_pulls=10)
    env.unwrapped.set_task({"means": [0.1, 0.2, 0.3, 0.4, 0.9]})

    def play(policy, pulls):
        observation, _ = env.reset(seed=1)
        actions = []
        for _ in range(pulls):
            action = policy.act(observation)
            assert env.action_space.contains(action)
            observation, reward, terminated, truncated, _ = env.step(action)
            policy.observe(reward, terminated or truncated)
            actions.append(int(action))
        return actions

    fresh = agent.adapt(env, steps=0)
    assert fresh.hidden is None  # nothing played: the trial starts from zero state
    with pytest.raises(RuntimeError, match="observe\\(\\) comes after act\\(\\)"):
        fresh.observe(1.0, False)
    adapted = agent.adapt(env, steps=1)  # one episode (10 pulls) played; the state carried on
    assert adapted.hidden is not None and float(adapted.hidden.abs().sum()) > 0
    assert play(adapted, 5) == play(agent.adapt(env, steps=1), 5)  # the run's seed by default
    agent.sampler.close()
