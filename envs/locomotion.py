"""Goal-varying MuJoCo locomotion: the MAML paper's benchmarks on gymnasium v5.

Each family subclasses gymnasium's v5 env (``HalfCheetahEnv``/``AntEnv``) and keeps every
constructor kwarg of it; only the reward's task-dependent term and some defaults change.

Lineage, shared by all families (what carries over from the paper and what does not):

- The MAML paper (Finn et al. 2017) used rllab's MuJoCo models: HalfCheetah with a control
  period of 0.01 s and Ant with 0.02 s. Gymnasium v5 steps every 0.05 s (frame skip 5 of
  a 0.01 s timestep). Velocities, hence per-step rewards, have the same units, but a
  200-step episode here covers 10 s of simulated time instead of 2 s (HalfCheetah) or 4 s
  (Ant), so returns are comparable in scale, not identical.
- Velocity is gymnasium v5's: the difference of the root position (HalfCheetah: the
  ``rootx`` joint; Ant: the torso body) before and after the step, divided by ``dt``. The
  paper's code used the torso's centre-of-mass velocity at the end of the step.
- Observations are v5's (HalfCheetah 17-d; Ant 105-d including contact forces),
  without the absolute x-y position except for AntGoal, which needs it to find the goal.
  rllab observed positions and clipped contact forces.
- Ant terminates when the torso's z leaves [0.2, 1.0] (v5's healthy range), as the
  paper's code did.
- Horizon 200 steps (the paper's), set at registration and configurable.

Every reward term is reported in ``info`` (``reward_forward``/``reward_goal``,
``reward_ctrl``, ``reward_contact``, ``reward_survive``) together with ``x_velocity`` and
``task``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from metarl.tasks import Task, check_task_json


class _TaskFamilyMixin:
    """Persistent task, ``reset(options={"task": ...})``, ``task`` property, ``info["task"]``."""

    _task: Task

    def _init_task(self, task: Task | None) -> None:
        self.set_task(task if task is not None else self.default_task())

    def default_task(self) -> Task:
        raise NotImplementedError

    def _validated(self, task: Task) -> Task:
        raise NotImplementedError

    def set_task(self, task: Task) -> None:
        """Set the task; it persists across resets until set again."""
        self._task = self._validated(check_task_json(task))

    @property
    def task(self) -> Task:
        return dict(self._task)

    @task.setter
    def task(self, task: Task) -> None:
        self.set_task(task)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if options and "task" in options:
            self.set_task(options["task"])
        obs, info = super().reset(seed=seed, options=options)  # type: ignore[misc]
        info["task"] = self.task
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)  # type: ignore[misc]
        info["task"] = self.task
        return obs, reward, terminated, truncated, info


def _velocity_task(task: Task) -> Task:
    if set(task) != {"velocity"}:
        raise ValueError(f"a velocity task is {{'velocity': v}}, got {task!r}")
    velocity = float(task["velocity"])
    if not np.isfinite(velocity):
        raise ValueError(f"velocity must be finite, got {velocity}")
    return {"velocity": velocity}


def _direction_task(task: Task) -> Task:
    if set(task) != {"direction"} or task["direction"] not in (-1, 1):
        raise ValueError(f"a direction task is {{'direction': -1 or 1}}, got {task!r}")
    return {"direction": int(task["direction"])}


def _goal_task(task: Task) -> Task:
    goal = np.asarray(task.get("goal", []), dtype=np.float64) if set(task) == {"goal"} else None
    if goal is None or goal.shape != (2,) or not np.isfinite(goal).all():
        raise ValueError(f"a goal task is {{'goal': [x, y]}}, got {task!r}")
    return {"goal": [float(goal[0]), float(goal[1])]}


class _VelocityTasks:
    """Task ``{"velocity": v}``, v ~ U[VELOCITY_RANGE]; task reward -|v_x - v|."""

    VELOCITY_RANGE: tuple[float, float]
    _task: Task

    def default_task(self) -> Task:
        return {"velocity": 1.0}

    def _validated(self, task: Task) -> Task:
        return _velocity_task(task)

    @classmethod
    def sample_tasks(cls, n: int, rng: np.random.Generator) -> list[Task]:
        return [{"velocity": float(v)} for v in rng.uniform(*cls.VELOCITY_RANGE, size=n)]

    def _task_reward(self, x_velocity: float) -> tuple[str, float]:
        return "reward_forward", -abs(x_velocity - self._task["velocity"])


class _DirectionTasks:
    """Task ``{"direction": d}``, d in {-1, +1} with p = 0.5; task reward d * v_x."""

    _task: Task

    def default_task(self) -> Task:
        return {"direction": 1}

    def _validated(self, task: Task) -> Task:
        return _direction_task(task)

    @classmethod
    def sample_tasks(cls, n: int, rng: np.random.Generator) -> list[Task]:
        return [{"direction": int(d)} for d in rng.choice([-1, 1], size=n)]

    def _task_reward(self, x_velocity: float) -> tuple[str, float]:
        return "reward_forward", self._task["direction"] * x_velocity


class _HalfCheetahFamily(_TaskFamilyMixin, HalfCheetahEnv):
    """HalfCheetah with the paper's control cost 0.05 |a|^2: reward = task term - control cost."""

    def __init__(self, task: Task | None = None, ctrl_cost_weight: float = 0.05, **kwargs: Any) -> None:
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        self._init_task(task)

    def _task_reward(self, x_velocity: float) -> tuple[str, float]:
        raise NotImplementedError

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, float]]:
        name, task_reward = self._task_reward(x_velocity)
        ctrl_cost = self.control_cost(action)
        return task_reward - ctrl_cost, {name: task_reward, "reward_ctrl": -ctrl_cost}


class _AntFamily(_TaskFamilyMixin, AntEnv):
    """Ant with the paper's cost weights: control 0.005 |a|^2, contact 0.0005 |clip(cfrc_ext)|^2.

    reward = task term + healthy_reward (while healthy) - control cost - contact cost;
    terminated when the torso leaves v5's healthy z range.
    """

    def __init__(
        self,
        task: Task | None = None,
        ctrl_cost_weight: float = 0.005,
        contact_cost_weight: float = 5e-4,
        healthy_reward: float = 1.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            ctrl_cost_weight=ctrl_cost_weight,
            contact_cost_weight=contact_cost_weight,
            healthy_reward=healthy_reward,
            **kwargs,
        )
        self._init_task(task)

    def _task_reward(self, x_velocity: float) -> tuple[str, float]:
        raise NotImplementedError

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, float]]:
        name, task_reward = self._task_reward(x_velocity)
        healthy_reward = self.healthy_reward
        ctrl_cost, contact_cost = self.control_cost(action), self.contact_cost
        reward = task_reward + healthy_reward - ctrl_cost - contact_cost
        return reward, {
            name: task_reward,
            "reward_ctrl": -ctrl_cost,
            "reward_contact": -contact_cost,
            "reward_survive": healthy_reward,
        }


class HalfCheetahVelEnv(_VelocityTasks, _HalfCheetahFamily):
    """HalfCheetah running at a target velocity (MAML paper, "HalfCheetah velocity").

    Task ``{"velocity": v}``, v ~ U[0, 2] (m/s). Reward = -|v_x - v| - 0.05 |a|^2 (the
    control weight is the ``ctrl_cost_weight`` kwarg). See the module docstring for lineage.
    """

    VELOCITY_RANGE = (0.0, 2.0)


class HalfCheetahDirEnv(_DirectionTasks, _HalfCheetahFamily):
    """HalfCheetah running forward or backward (MAML paper, "HalfCheetah direction").

    Task ``{"direction": d}``, d in {-1, +1} with p = 0.5. Reward = d * v_x - 0.05 |a|^2.
    See the module docstring for lineage.
    """


class AntVelEnv(_VelocityTasks, _AntFamily):
    """Ant running at a target velocity (MAML paper, "Ant velocity").

    Task ``{"velocity": v}``, v ~ U[0, 3]. Reward = -|v_x - v| + 1.05 (survive: the paper's
    +1 and rllab's +0.05) - 0.005 |a|^2 - 0.0005 |clip(cfrc_ext, -1, 1)|^2.
    """

    VELOCITY_RANGE = (0.0, 3.0)


class AntDirEnv(_DirectionTasks, _AntFamily):
    """Ant running forward or backward along x (MAML paper, "Ant direction").

    Task ``{"direction": d}``, d in {-1, +1}. Reward = d * v_x + the same survive, control
    and contact terms as `AntVelEnv`.
    """


class AntGoalEnv(_AntFamily):
    """Ant walking to a goal position (MAML paper's code, "Ant goal").

    Task ``{"goal": [x, y]}``, goal ~ U[-3, 3]^2. Reward = -L1(torso xy - goal) + 4 + 0.05
    (survive, as in the authors' code; PAPER_NUMBERS.md omits it) - 0.005 |a|^2 - 0.0005
    |clip(cfrc_ext, -1, 1)|^2. The observation includes the torso's x-y position.
    """

    GOAL_RANGE = (-3.0, 3.0)
    GOAL_BONUS = 4.0

    def __init__(
        self,
        task: Task | None = None,
        healthy_reward: float = 0.05,
        exclude_current_positions_from_observation: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            task,
            healthy_reward=healthy_reward,
            exclude_current_positions_from_observation=exclude_current_positions_from_observation,
            **kwargs,
        )

    def default_task(self) -> Task:
        return {"goal": [0.0, 0.0]}

    def _validated(self, task: Task) -> Task:
        return _goal_task(task)

    @classmethod
    def sample_tasks(cls, n: int, rng: np.random.Generator) -> list[Task]:
        return [{"goal": [float(x), float(y)]} for x, y in rng.uniform(*cls.GOAL_RANGE, size=(n, 2))]

    def _task_reward(self, x_velocity: float) -> tuple[str, float]:
        xy = self.data.qpos[:2]  # the torso's position after the step (= info x/y_position)
        return "reward_goal", -float(np.abs(xy - np.asarray(self._task["goal"])).sum()) + self.GOAL_BONUS
