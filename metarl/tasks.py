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

Any gymnasium env class with this protocol is a family, registered under any id with
gymnasium's own ``gym.register(id, entry_point=...)``; sampler workers receive its spec by
cloudpickle, so a family defined in ``__main__`` or a notebook works with every backend.
A ``task`` property needs a setter (``VectorEnv.set_attr`` sets it); a plain attribute that
the env reads also does.

Train and held-out test tasks come from disjoint seeded streams (`sample_train_tasks`,
`sample_test_tasks`). A family of a fixed benchmark (Meta-World) may also provide its task
lists: ``train_task_groups`` and ``test_task_groups``, each a list of groups (task classes)
of tasks. Train and test draws then come from those lists (`draw_from_groups`), so held-out
evaluation plays exactly the benchmark's test tasks; ``task_class(task)`` names a task's
group for per-class reports.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

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


PROTOCOL = ("sample_tasks", "set_task", "task")


def check_family(family: Any, name: str) -> None:
    """Raise TypeError naming what `family` (an env instance, unwrapped) lacks of the protocol:
    callable ``sample_tasks`` and ``set_task``, and a ``task`` that can be read and set."""
    missing = [attr for attr in PROTOCOL if not hasattr(family, attr)]
    missing += [
        attr
        for attr in ("sample_tasks", "set_task")
        if attr not in missing and not callable(getattr(family, attr))
    ]
    if missing:
        raise TypeError(
            f"{name} is not a task family: its env lacks {', '.join(missing)} "
            "(a family has sample_tasks(n, rng), a persistent set_task(task) and a settable task property; "
            "see metarl.tasks)"
        )
    declared = getattr(type(family), "task", None)
    if isinstance(declared, property) and declared.fset is None:
        raise TypeError(
            f"{name} is not a task family: its task property has no setter "
            "(VectorEnv.set_attr('task', ...) sets it; make the setter call set_task)"
        )


def env_spec(env_id: str) -> EnvSpec:
    """The gymnasium spec registered under `env_id`, with an error that lists the registered
    metarl ids for an unknown id. Workers build their envs from it (sent by cloudpickle), so
    they need not have imported whatever registered it."""
    try:
        return gym.spec(env_id)
    except gym.error.Error as err:
        raise ValueError(
            f"unknown env id {env_id!r}; registered task families: {', '.join(registered_families())} "
            "(a family of your own: gym.register(id, entry_point=YourEnv) first)"
        ) from err


def family_of(env_id: str, env_kwargs: dict[str, Any] | None = None) -> TaskFamily:
    """An instance of the family behind `env_id`, checked against the protocol, for sampling
    tasks (no simulation needed)."""
    env = make_env(env_id, env_kwargs)
    family = env.unwrapped
    try:
        check_family(family, env_id)
    except TypeError:
        env.close()
        raise
    return family


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """`gym.make` with an error that lists the registered metarl ids for an unknown id."""
    return gym.make(env_spec(env_id), **(env_kwargs or {}))


def registered_families() -> list[str]:
    """The registered ``metarl/*`` env ids (those of ``import metarl``)."""
    return sorted(env_id for env_id in gym.registry if env_id.startswith("metarl/"))


def sample_train_tasks(family: TaskFamily, n: int, seed: int, iteration: int) -> list[Task]:
    """The `n` training tasks of meta-iteration `iteration` of run `seed` (from the family's
    ``train_task_groups`` if it has them)."""
    return _draw(family, "train", n, seeding.generator(seed, seeding.TRAIN_TASKS, iteration))


def sample_test_tasks(family: TaskFamily, n: int, seed: int) -> list[Task]:
    """`n` held-out test tasks of run `seed`, from a stream disjoint from every train stream
    (from the family's ``test_task_groups`` if it has them)."""
    return _draw(family, "test", n, seeding.generator(seed, seeding.TEST_TASKS))


def sample_eval_tasks(family: TaskFamily, n: int, seed: int, split: str = "test") -> list[Task]:
    """`n` tasks to evaluate run `seed` on: held-out ones (split "test", `sample_test_tasks`)
    or training ones (split "train": drawn from the training distribution or lists by a
    stream of their own, for meta-train performance as Meta-World reports it)."""
    if split == "test":
        return sample_test_tasks(family, n, seed)
    if split != "train":
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _draw(family, "train", n, seeding.generator(seed, seeding.META_TRAIN_EVAL))


def _draw(family: TaskFamily, split: str, n: int, rng: np.random.Generator) -> list[Task]:
    """`n` tasks of `split` from the family's task lists if it has them, else its sampler."""
    groups = getattr(family, f"{split}_task_groups", None)
    return draw_from_groups(groups, n, rng) if groups is not None else family.sample_tasks(n, rng)


def draw_from_groups(groups: list[list[Task]], n: int, rng: np.random.Generator) -> list[Task]:
    """`n` tasks from fixed task lists, balanced over the groups, group by group in order.

    Each group gives ``n // len(groups)`` tasks, and ``n % len(groups)`` groups chosen at
    random give one more (as Meta-World's own ML10/ML45 vector envs spread a meta-batch over
    the classes). Within a group tasks are drawn without replacement while it has enough, so
    asking for a whole list returns every task of it once. Uses `rng` only.
    """
    if not groups or any(not group for group in groups):
        raise ValueError("a family's task groups must be non-empty lists of tasks")
    counts = np.full(len(groups), n // len(groups))
    counts[rng.choice(len(groups), n % len(groups), replace=False)] += 1
    tasks: list[Task] = []
    for group, count in zip(groups, counts.tolist()):
        picks = rng.choice(len(group), count, replace=count > len(group)).tolist()
        tasks += [dict(group[i]) for i in picks]
    return tasks


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
