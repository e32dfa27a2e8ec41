"""2D navigation: the point task of the MAML paper (Finn et al. 2017, section 5.3).

Lineage: identical to ``PointEnvRandGoal`` of the authors' code (cbfinn/maml_rl):

- the agent starts at (0, 0) in the plane; observation = its position (2,);
- a task is a goal ``{"goal": [gx, gy]}`` with ``goal ~ U[-0.5, 0.5]^2``;
- the action is clipped to ``[-0.1, 0.1]^2`` and added to the position;
- reward = -(L2 distance from the new position to the goal);
- terminated when the new position is within 0.01 of the goal in both coordinates
  (``|x - gx| < 0.01 and |y - gy| < 0.01``, as the authors' code tests it);
- horizon 100 steps (truncation).

`Navigation2DEnv` is the single env; `Navigation2DVectorEnv` steps any number of sub-envs,
each with its own task, in one numpy call. Both use `_step_points`, so they agree exactly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from metarl.tasks import Task, check_task_json, per_env_tasks

GOAL_LOW, GOAL_HIGH = -0.5, 0.5
MAX_ACTION = 0.1
GOAL_TOLERANCE = 0.01


def _step_points(
    position: np.ndarray, goal: np.ndarray, action: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step for a batch of points.

    position, goal, action: [n, 2] float64. Returns (new position [n, 2],
    reward [n], terminated [n] bool).
    """
    new_position = position + np.clip(action, -MAX_ACTION, MAX_ACTION)
    delta = new_position - goal
    reward = -np.sqrt(delta[:, 0] * delta[:, 0] + delta[:, 1] * delta[:, 1])
    terminated = (np.abs(delta[:, 0]) < GOAL_TOLERANCE) & (np.abs(delta[:, 1]) < GOAL_TOLERANCE)
    return new_position, reward, terminated


def _goal_task(goal: Any) -> Task:
    goal = np.asarray(goal, dtype=np.float64)
    if goal.shape != (2,):
        raise ValueError(f"Navigation2D task goal must have 2 coordinates, got {goal.tolist()!r}")
    return {"goal": [float(goal[0]), float(goal[1])]}


class Navigation2DEnv(gym.Env):
    """Point agent moving to a goal in the plane. See the module docstring."""

    metadata = {"render_modes": []}

    def __init__(self, task: Task | None = None) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-MAX_ACTION, MAX_ACTION, shape=(2,), dtype=np.float32)
        self._position = np.zeros(2)
        self._goal = np.zeros(2)
        self.set_task(task if task is not None else {"goal": [0.0, 0.0]})

    @staticmethod
    def sample_tasks(n: int, rng: np.random.Generator) -> list[Task]:
        """`n` goals uniform in [-0.5, 0.5]^2, drawn from `rng` only."""
        goals = rng.uniform(GOAL_LOW, GOAL_HIGH, size=(n, 2))
        return [_goal_task(goal) for goal in goals]

    def set_task(self, task: Task) -> None:
        """Set the goal; it persists across resets until set again."""
        check_task_json(task)
        self._goal = np.asarray(_goal_task(task["goal"])["goal"])

    @property
    def task(self) -> Task:
        return _goal_task(self._goal)

    @task.setter
    def task(self, task: Task) -> None:
        self.set_task(task)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options and "task" in options:
            self.set_task(options["task"])
        self._position = np.zeros(2)
        return self._position.astype(np.float32), {"task": self.task}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float64).reshape(1, 2)
        position, reward, terminated = _step_points(self._position[None], self._goal[None], action)
        self._position = position[0]
        info = {"task": self.task}
        return self._position.astype(np.float32), float(reward[0]), bool(terminated[0]), False, info


class Navigation2DVectorEnv(VectorEnv):
    """`num_envs` 2D-navigation sub-envs stepped in one numpy call, each with its own task.

    Autoreset follows gymnasium's NEXT_STEP mode; a sub-env keeps its task across resets.
    ``set_attr("task", [t0, t1, ...])`` sets per-sub-env tasks; ``reset(options=
    {"reset_mask": mask})`` resets only the sub-envs where mask [num_envs] is True.
    Deterministic: the seed of `reset` is accepted for the API and has no effect.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, max_episode_steps: int = 100) -> None:
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.single_action_space = gym.spaces.Box(-MAX_ACTION, MAX_ACTION, (2,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._positions = np.zeros((num_envs, 2))
        self._goals = np.zeros((num_envs, 2))
        self._tasks = [_goal_task(goal) for goal in self._goals]
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(num_envs, dtype=bool)

    @staticmethod
    def sample_tasks(n: int, rng: np.random.Generator) -> list[Task]:
        return Navigation2DEnv.sample_tasks(n, rng)

    @property
    def task(self) -> list[Task]:
        """The task of each sub-env (a list; set with ``set_attr("task", ...)``)."""
        return list(self._tasks)

    def set_attr(self, name: str, values: Any) -> None:
        for index, task in enumerate(per_env_tasks(type(self).__name__, name, values, self.num_envs)):
            self._goals[index] = _goal_task(task["goal"])["goal"]
        self._tasks = [_goal_task(goal) for goal in self._goals]

    def get_attr(self, name: str) -> tuple[Any, ...]:
        if name != "task":
            raise AttributeError(f"Navigation2DVectorEnv has no attribute {name!r} to get")
        return tuple(self.task)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed if isinstance(seed, int) or seed is None else None)
        options = options or {}
        if "task" in options:
            self.set_attr("task", options["task"])
        reset = np.asarray(options.get("reset_mask", np.ones(self.num_envs, bool)), bool)
        self._positions[reset] = 0.0
        self._elapsed[reset] = 0
        self._needs_reset[reset] = False
        return self._positions.astype(np.float32), {"task": self._tasks}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 2)
        positions, rewards, terminated = _step_points(self._positions, self._goals, actions)
        self._elapsed += 1
        truncated = (self._elapsed >= self.max_episode_steps) & ~terminated
        # NEXT_STEP autoreset: sub-envs that ended on the previous step reset now.
        resetting = self._needs_reset
        positions[resetting] = 0.0
        rewards[resetting] = 0.0
        terminated[resetting] = False
        truncated[resetting] = False
        self._elapsed[resetting] = 0
        self._positions = positions
        self._needs_reset = terminated | truncated
        info = {"task": self._tasks}
        return self._positions.astype(np.float32), rewards, terminated, truncated, info
