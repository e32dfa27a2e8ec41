"""The task-family protocol.

A *task family* is a gymnasium env whose dynamics or reward depend on a task: a small
JSON-able dict such as ``{"goal": [0.1, -0.3]}``. A family env

- samples tasks with ``sample_tasks(n, rng)`` from an explicit ``np.random.Generator``;
- keeps its task until told otherwise: ``set_task(task)`` is persistent, so gymnasium's
  autoreset (``reset()`` without options) keeps it;
- accepts ``reset(options={"task": task})``;
- exposes ``task`` as a property, so ``VectorEnv.set_attr("task", [t0, t1, ...])`` gives each
  sub-env its own task;
- reports the task in ``info["task"]``.

Train and held-out test tasks come from disjoint seeded streams (`sample_train_tasks`,
`sample_test_tasks`).
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from metarl import seeding

Task = dict[str, Any]


@runtime_checkable
class TaskFamily(Protocol):
    """What a task-family env provides on top of `gymnasium.Env`."""

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]: ...

    def set_task(self, task: Task) -> None: ...

    @property
    def task(self) -> Task: ...


def check_task_json(task: Task) -> Task:
    """Raise if `task` is not a JSON-able dict; return it unchanged."""
    if not isinstance(task, dict):
        raise TypeError(f"a task must be a dict, got {type(task).__name__}: {task!r}")
    try:
        json.dumps(task)
    except TypeError as err:
        raise TypeError(f"task {task!r} is not JSON-able: {err}") from err
    return task


def per_env_tasks(owner: str, name: str, values: Any, num_envs: int) -> list[Task]:
    """The tasks of ``VectorEnv.set_attr(name, values)`` for a family's vector env: only
    ``"task"`` can be set; one task is broadcast to all `num_envs` sub-envs, a list must
    have one per sub-env. Each is checked to be JSON-able (the family validates the rest)."""
    if name != "task":
        raise AttributeError(f"{owner} can only set 'task', not {name!r}")
    if not isinstance(values, (list, tuple)):
        values = [values] * num_envs
    if len(values) != num_envs:
        raise ValueError(f"expected {num_envs} tasks, got {len(values)}")
    return [check_task_json(task) for task in values]


def family_of(env_id: str, env_kwargs: dict[str, Any] | None = None) -> TaskFamily:
    """An instance of the family behind `env_id`, for sampling tasks (no simulation needed)."""
    env = make_env(env_id, env_kwargs)
    family = env.unwrapped
    if not isinstance(family, TaskFamily):
        env.close()
        raise TypeError(
            f"{env_id} is not a task family: its env lacks sample_tasks/set_task/task (see metarl.tasks)"
        )
    return family


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """`gym.make` with an error that lists the registered metarl ids for an unknown id."""
    import envs  # noqa: F401  (registers the metarl/* ids)

    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as err:
        if env_id not in gym.registry:
            raise ValueError(
                f"unknown env id {env_id!r}; registered task families: {', '.join(registered_families())}"
            ) from err
        raise


def registered_families() -> list[str]:
    """The registered ``metarl/*`` env ids."""
    import envs  # noqa: F401

    return sorted(env_id for env_id in gym.registry if env_id.startswith("metarl/"))


def sample_train_tasks(family: TaskFamily, n: int, seed: int, iteration: int) -> list[Task]:
    """The `n` training tasks of meta-iteration `iteration` of run `seed`."""
    return family.sample_tasks(n, seeding.generator(seed, seeding.TRAIN_TASKS, iteration))


def sample_test_tasks(family: TaskFamily, n: int, seed: int) -> list[Task]:
    """`n` held-out test tasks of run `seed`, from a stream disjoint from every train stream."""
    return family.sample_tasks(n, seeding.generator(seed, seeding.TEST_TASKS))


def task_features(tasks: list[Task]) -> np.ndarray:
    """The tasks' numbers flattened into one row each: [len(tasks), features] float32.

    Keys in sorted order, each value (a number or nested lists of numbers) flattened; every
    task of a family must give the same width. For a Bernoulli bandit this is its arm means
    [k]; for a tabular MDP its reward means then its transitions.
    """
    rows = []
    for task in tasks:
        try:
            rows.append(np.concatenate([np.asarray(task[key], np.float32).ravel() for key in sorted(task)]))
        except (TypeError, ValueError) as err:
            raise TypeError(f"task {task!r} is not made of numbers: {err}") from err
    if len({row.shape for row in rows}) > 1:
        raise ValueError(f"tasks give feature vectors of different widths: {sorted({len(r) for r in rows})}")
    return np.stack(rows) if rows else np.zeros((0, 0), np.float32)
