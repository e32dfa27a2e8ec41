"""Multi-armed bandits: the RL2 paper's bandit tasks (Duan et al. 2016, section 4.1).

- A task is ``{"means": [m_1, ..., m_k]}``: one mean reward per arm.
  - ``arms="bernoulli"`` (the paper's): m_i ~ U[0, 1]; a pull of arm i pays 1 with
    probability m_i, else 0.
  - ``arms="gaussian"``: m_i ~ N(0, 1); a pull of arm i pays m_i + N(0, 1).
- The action is the arm (``Discrete(k)``). The observation is a constant 0 of shape (1,):
  a bandit has no state, and a recurrent policy sees the previous action and reward.
- An episode is ``num_pulls`` pulls (n; truncated after the last one). For RL2 a trial
  is one episode: the agent has n pulls to find and exploit the best arm.

The randomness of an episode is drawn at its reset from the env's generator (one block of
``num_pulls`` uniforms or normals), so `BanditEnv` and `BanditVectorEnv` agree exactly for
the same seeds: both step through `_pull`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from metarl.envs.episode_noise import EpisodeNoiseVectorEnv

from metarl.tasks import Task, check_task_json, per_env_tasks

ARM_KINDS = ("bernoulli", "gaussian")


def _check_kind(arms: str) -> str:
    if arms not in ARM_KINDS:
        raise ValueError(f"unknown arm distribution {arms!r}; choose from {list(ARM_KINDS)}")
    return arms


def _means(task: Task, num_arms: int, arms: str) -> np.ndarray:
    """The task's arm means [num_arms] float64, validated."""
    check_task_json(task)
    means = np.asarray(task.get("means", []), dtype=np.float64) if set(task) == {"means"} else None
    if means is None or means.shape != (num_arms,) or not np.isfinite(means).all():
        raise ValueError(f"a {num_arms}-armed bandit task is {{'means': [{num_arms} numbers]}}, got {task!r}")
    if arms == "bernoulli" and ((means < 0) | (means > 1)).any():
        raise ValueError(f"Bernoulli arm means must lie in [0, 1], got {means.tolist()}")
    return means


def sample_bandit_tasks(n: int, rng: np.random.Generator, num_arms: int, arms: str) -> list[Task]:
    """`n` bandits: means ~ U[0, 1] (Bernoulli) or N(0, 1) (Gaussian), drawn from `rng` only."""
    if arms == "bernoulli":
        means = rng.uniform(0.0, 1.0, size=(n, num_arms))
    else:
        means = rng.standard_normal((n, num_arms))
    return [{"means": [float(m) for m in row]} for row in means]


def _draw_noise(rng: np.random.Generator, num_pulls: int, arms: str) -> np.ndarray:
    """One episode's noise [num_pulls]: uniforms (Bernoulli) or standard normals (Gaussian)."""
    return rng.random(num_pulls) if arms == "bernoulli" else rng.standard_normal(num_pulls)


def _pull(means: np.ndarray, action: np.ndarray, noise: np.ndarray, arms: str) -> np.ndarray:
    """Rewards [n] of pulling arms `action` [n] of bandits `means` [n, k] with noise [n]."""
    chosen = means[np.arange(len(action)), action]
    if arms == "bernoulli":
        return (noise < chosen).astype(np.float64)
    return chosen + noise


class BanditEnv(gym.Env):
    """A k-armed bandit played for `num_pulls` pulls. See the module docstring."""

    metadata = {"render_modes": []}

    def __init__(
        self, num_arms: int = 5, num_pulls: int = 10, arms: str = "bernoulli", task: Task | None = None
    ) -> None:
        if num_arms < 1 or num_pulls < 1:
            raise ValueError(f"num_arms and num_pulls must be >= 1, got {num_arms}, {num_pulls}")
        self.num_arms, self.num_pulls, self.arms = int(num_arms), int(num_pulls), _check_kind(arms)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(self.num_arms)
        self._means = np.full(self.num_arms, 0.5)
        self._noise = np.zeros(self.num_pulls)
        self._pulls = 0
        self.set_task(task if task is not None else {"means": [0.5] * self.num_arms})

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return sample_bandit_tasks(n, rng, self.num_arms, self.arms)

    def set_task(self, task: Task) -> None:
        """Set the arm means; they persist across resets until set again."""
        self._means = _means(task, self.num_arms, self.arms)

    @property
    def task(self) -> Task:
        return {"means": [float(m) for m in self._means]}

    @task.setter
    def task(self, task: Task) -> None:
        self.set_task(task)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options and "task" in options:
            self.set_task(options["task"])
        self._noise = _draw_noise(self.np_random, self.num_pulls, self.arms)
        self._pulls = 0
        return np.zeros(1, np.float32), {"task": self.task}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not an arm of this {self.num_arms}-armed bandit")
        reward = _pull(
            self._means[None], np.array([int(action)]), self._noise[self._pulls : self._pulls + 1], self.arms
        )
        self._pulls += 1
        truncated = self._pulls >= self.num_pulls
        return np.zeros(1, np.float32), float(reward[0]), False, truncated, {"task": self.task}


class BanditVectorEnv(EpisodeNoiseVectorEnv):
    """`num_envs` bandits pulled in one numpy call, each with its own task and generator
    (see `EpisodeNoiseVectorEnv`). Sub-env i with seed s equals ``BanditEnv`` reset with seed s.
    """

    def __init__(
        self,
        num_envs: int,
        num_arms: int = 5,
        num_pulls: int = 10,
        arms: str = "bernoulli",
        max_episode_steps: int | None = None,
    ) -> None:
        template = BanditEnv(num_arms, num_pulls, arms)
        self._init_vector(num_envs, template)
        self.num_arms, self.arms = template.num_arms, template.arms
        self.num_pulls = min(template.num_pulls, max_episode_steps or template.num_pulls)
        self._means = np.full((num_envs, self.num_arms), 0.5)
        self._noise = np.zeros((num_envs, template.num_pulls))
        self._pulls = np.zeros(num_envs, np.int64)

    @property
    def task(self) -> list[Task]:
        return [{"means": [float(m) for m in row]} for row in self._means]

    def set_attr(self, name: str, values: Any) -> None:
        tasks = per_env_tasks(type(self).__name__, name, values, self.num_envs)
        self._means = np.stack([_means(task, self.num_arms, self.arms) for task in tasks])

    def _start(self, which: np.ndarray) -> None:
        for index in np.flatnonzero(which):
            self._noise[index] = _draw_noise(self._rngs[index], self._template.num_pulls, self.arms)
        self._pulls[which] = 0

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pulls = np.minimum(self._pulls, self._noise.shape[1] - 1)
        rewards = _pull(self._means, actions, self._noise[np.arange(self.num_envs), pulls], self.arms)
        self._pulls += 1
        return rewards, self._pulls >= self.num_pulls

    def _observations(self) -> np.ndarray:
        return np.zeros((self.num_envs, 1), np.float32)
