"""Random tabular MDPs: the RL2 paper's MDP tasks (Duan et al. 2016, section 4.2).

- ``num_states`` states (10), ``num_actions`` actions (5); every episode starts in state 0
  and lasts ``episode_length`` steps (10; truncated).
- A task is ``{"transitions": P, "reward_means": mu}``: P [S][A][S], each row ~ a flat
  Dirichlet; mu [S][A] ~ N(1, 1). Taking action a in state s pays mu[s][a] + N(0, 1) and
  moves to s' ~ P[s][a].
- The observation is the one-hot state [S]. For RL2 a trial is n episodes on one MDP.

An episode's randomness is drawn at its reset from the env's generator (``episode_length``
uniforms for the transitions, then as many normals for the rewards), so `TabularMDPEnv`
and `TabularMDPVectorEnv` agree exactly for the same seeds: both step through `_transition`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from metarl.envs.episode_noise import EpisodeNoiseVectorEnv

from metarl.tasks import Task, check_task_json, per_env_tasks


def _mdp(task: Task, num_states: int, num_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """(transitions [S, A, S], reward means [S, A]) of `task`, validated."""
    check_task_json(task)
    shape = (num_states, num_actions)
    if set(task) != {"transitions", "reward_means"}:
        raise ValueError(
            f"a tabular MDP task is {{'transitions': P, 'reward_means': mu}}, got keys {sorted(task)}"
        )
    transitions = np.asarray(task["transitions"], dtype=np.float64)
    means = np.asarray(task["reward_means"], dtype=np.float64)
    if transitions.shape != (*shape, num_states) or means.shape != shape:
        raise ValueError(
            f"expected transitions {(*shape, num_states)} and reward_means {shape}, "
            f"got {transitions.shape} and {means.shape}"
        )
    if not (np.isfinite(means).all() and (transitions >= 0).all()):
        raise ValueError("reward means must be finite and transition probabilities >= 0")
    if not np.allclose(transitions.sum(-1), 1.0, atol=1e-6):
        raise ValueError("each transition row P[s][a] must sum to 1")
    return transitions, means


def sample_mdp_tasks(n: int, rng: np.random.Generator, num_states: int, num_actions: int) -> list[Task]:
    """`n` MDPs: P[s, a] ~ Dirichlet(1, ..., 1), mu[s, a] ~ N(1, 1), drawn from `rng` only."""
    transitions = rng.dirichlet(np.ones(num_states), size=(n, num_states, num_actions))
    means = rng.normal(1.0, 1.0, size=(n, num_states, num_actions))
    return [{"transitions": p.tolist(), "reward_means": m.tolist()} for p, m in zip(transitions, means)]


def _draw_noise(rng: np.random.Generator, episode_length: int) -> np.ndarray:
    """One episode's noise [2, episode_length]: transition uniforms, then reward normals."""
    uniforms = rng.random(episode_length)
    return np.stack([uniforms, rng.standard_normal(episode_length)])


def _transition(
    cumulative: np.ndarray, means: np.ndarray, state: np.ndarray, action: np.ndarray, noise: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(next state [n], reward [n]) of n MDPs.

    cumulative: [n, S, A, S] cumulative transition probabilities; means: [n, S, A];
    state, action: [n] int; noise: [n, 2] (uniform for the transition, normal for the reward).
    """
    rows = np.arange(len(state))
    cdf = cumulative[rows, state, action]  # [n, S]
    next_state = np.minimum((noise[:, :1] >= cdf).sum(1), cdf.shape[1] - 1)
    return next_state, means[rows, state, action] + noise[:, 1]


class TabularMDPEnv(gym.Env):
    """One random tabular MDP. See the module docstring."""

    metadata = {"render_modes": []}

    def __init__(
        self, num_states: int = 10, num_actions: int = 5, episode_length: int = 10, task: Task | None = None
    ) -> None:
        if min(num_states, num_actions, episode_length) < 1:
            raise ValueError("num_states, num_actions and episode_length must be >= 1")
        self.num_states, self.num_actions = int(num_states), int(num_actions)
        self.episode_length = int(episode_length)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(self.num_states,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(self.num_actions)
        self._state, self._steps = 0, 0
        self._noise = np.zeros((2, self.episode_length))
        self.set_task(task if task is not None else self._uniform_task())

    def _uniform_task(self) -> Task:
        shape = (self.num_states, self.num_actions)
        transitions = np.full((*shape, self.num_states), 1.0 / self.num_states)
        return {"transitions": transitions.tolist(), "reward_means": np.ones(shape).tolist()}

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return sample_mdp_tasks(n, rng, self.num_states, self.num_actions)

    def set_task(self, task: Task) -> None:
        """Set the MDP; it persists across resets until set again."""
        self._transitions, self._means = _mdp(task, self.num_states, self.num_actions)
        self._cumulative = np.cumsum(self._transitions, axis=-1)

    @property
    def task(self) -> Task:
        return {"transitions": self._transitions.tolist(), "reward_means": self._means.tolist()}

    @task.setter
    def task(self, task: Task) -> None:
        self.set_task(task)

    def _observation(self) -> np.ndarray:
        return np.eye(self.num_states, dtype=np.float32)[self._state]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options and "task" in options:
            self.set_task(options["task"])
        self._noise = _draw_noise(self.np_random, self.episode_length)
        self._state, self._steps = 0, 0
        return self._observation(), {"task": self.task}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not one of this MDP's {self.num_actions} actions")
        next_state, reward = _transition(
            self._cumulative[None],
            self._means[None],
            np.array([self._state]),
            np.array([int(action)]),
            self._noise[:, self._steps][None],
        )
        self._state, self._steps = int(next_state[0]), self._steps + 1
        truncated = self._steps >= self.episode_length
        return self._observation(), float(reward[0]), False, truncated, {"task": self.task}


class TabularMDPVectorEnv(EpisodeNoiseVectorEnv):
    """`num_envs` tabular MDPs stepped in one numpy call, each with its own task and generator
    (see `EpisodeNoiseVectorEnv`). Sub-env i with seed s equals ``TabularMDPEnv`` reset with
    seed s.
    """

    def __init__(
        self,
        num_envs: int,
        num_states: int = 10,
        num_actions: int = 5,
        episode_length: int = 10,
        max_episode_steps: int | None = None,
    ) -> None:
        template = TabularMDPEnv(num_states, num_actions, episode_length)
        self._init_vector(num_envs, template)
        self.num_states, self.num_actions = template.num_states, template.num_actions
        self.episode_length = min(template.episode_length, max_episode_steps or template.episode_length)
        self.set_attr("task", template.task)
        self._noise = np.zeros((num_envs, 2, template.episode_length))
        self._states = np.zeros(num_envs, np.int64)
        self._steps = np.zeros(num_envs, np.int64)

    @property
    def task(self) -> list[Task]:
        return [
            {"transitions": p.tolist(), "reward_means": m.tolist()}
            for p, m in zip(self._transitions, self._means)
        ]

    def set_attr(self, name: str, values: Any) -> None:
        tasks = per_env_tasks(type(self).__name__, name, values, self.num_envs)
        parsed = [_mdp(task, self.num_states, self.num_actions) for task in tasks]
        self._transitions = np.stack([p for p, _ in parsed])
        self._means = np.stack([m for _, m in parsed])
        self._cumulative = np.cumsum(self._transitions, axis=-1)

    def _start(self, which: np.ndarray) -> None:
        for index in np.flatnonzero(which):
            self._noise[index] = _draw_noise(self._rngs[index], self._template.episode_length)
        self._states[which] = 0
        self._steps[which] = 0

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        steps = np.minimum(self._steps, self._noise.shape[2] - 1)
        noise = self._noise[np.arange(self.num_envs), :, steps]  # [n, 2]
        next_states, rewards = _transition(self._cumulative, self._means, self._states, actions, noise)
        self._states, self._steps = next_states, self._steps + 1
        return rewards, self._steps >= self.episode_length

    def _observations(self) -> np.ndarray:
        return np.eye(self.num_states, dtype=np.float32)[self._states]
