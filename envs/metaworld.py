"""Meta-World's meta-learning benchmarks (Yu et al. 2019; Farama's ``metaworld`` 3.x) as
task families: ``metarl/MetaWorld-ML1-v3`` (one task class, goals vary; kwarg ``env_name``,
e.g. ``"push-v3"``), ``metarl/MetaWorld-ML10-v3`` (10 training classes, 5 held-out ones) and
``metarl/MetaWorld-ML45-v3`` (45 and 5). Needs ``pip install metarl[metaworld]``.

- A task is ``{"env_name": "push-v3", "split": "train", "index": 17}``: entry `index` of
  that class's task list of that split in the benchmark that Meta-World builds from
  ``benchmark_seed`` (each family rebuilds it; no Meta-World task bytes are ever stored).
- The family's train and test tasks are Meta-World's (`train_task_groups`,
  `test_task_groups`, one group per class), so metarl's train/test task draws come from
  them: ML10/ML45 test classes never appear in training, ML1's test goals are its own.
- Observations (39-d, the goal hidden), actions (4-d in [-1, 1]), rewards (the v2 reward by
  default; ``reward_function_version="v1"`` for the original one) and ``info["success"]``
  are Meta-World's own env's: a step is one call of its ``step``. The horizon is 500 steps.
- Meta-World's envs hold a 21 MB model each and change it on reset (objects are placed by
  editing the model), so every sub-env owns one env per class it has played. The vector
  env therefore runs a task's episodes one after another (`episodes_in_sequence`): a
  sampler worker holds one Meta-World env per task, not per episode.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from metarl.tasks import Task, check_task_json, draw_from_groups, per_env_tasks

HORIZON = 500  # Meta-World's max_path_length
SPLITS = ("train", "test")
REWARD_VERSIONS = ("v1", "v2")


def _metaworld():
    try:
        import metaworld
    except ImportError as err:
        raise ImportError(
            "the Meta-World families need the metaworld package: pip install 'metarl[metaworld]'"
        ) from err
    return metaworld


@functools.lru_cache(maxsize=8)
def benchmark(name: str, seed: int, env_name: str | None = None) -> Any:
    """Meta-World's benchmark object `name` ("ML1", "ML10", "ML45") built from `seed`, once
    per process (building ML10 takes about 10 s, ML45 about 40 s: every class's env is made
    and reset 50 times to draw its goals)."""
    metaworld = _metaworld()
    if name == "ML1":
        if env_name not in metaworld.ML1.ENV_NAMES:
            names = ", ".join(metaworld.ML1.ENV_NAMES)
            raise ValueError(f"unknown Meta-World env_name {env_name!r}; ML1 takes one of {names}")
        return metaworld.ML1(env_name, seed=seed)
    if name in ("ML10", "ML45"):
        return getattr(metaworld, name)(seed=seed)
    raise ValueError(f"unknown Meta-World benchmark {name!r}; choose ML1, ML10 or ML45")


class _Benchmark:
    """A Meta-World benchmark's classes and tasks, as metarl tasks."""

    def __init__(self, name: str, seed: int, env_name: str | None, reward_function_version: str) -> None:
        if reward_function_version not in REWARD_VERSIONS:
            raise ValueError(f"reward_function_version must be 'v1' or 'v2', got {reward_function_version!r}")
        self.name, self.seed, self.reward_function_version = name, seed, reward_function_version
        self.source = benchmark(name, seed, env_name)
        self.classes = {**self.source.train_classes, **self.source.test_classes}
        self.tasks: dict[tuple[str, str], list[Any]] = {}  # (split, env_name) -> Meta-World tasks
        for split, tasks in (("train", self.source.train_tasks), ("test", self.source.test_tasks)):
            for task in tasks:
                self.tasks.setdefault((split, task.env_name), []).append(task)

    def groups(self, split: str) -> list[list[Task]]:
        """The tasks of `split`, one list per task class (in Meta-World's class order)."""
        classes = self.source.train_classes if split == "train" else self.source.test_classes
        return [
            [{"env_name": name, "split": split, "index": i} for i in range(len(self.tasks[split, name]))]
            for name in classes
        ]

    def resolve(self, task: Task) -> Any:
        """The Meta-World task that `task` names; ValueError naming what is wrong."""
        check_task_json(task)
        if set(task) != {"env_name", "split", "index"}:
            raise ValueError(
                f"a Meta-World task is {{'env_name', 'split', 'index'}}, got keys {sorted(task)} in {task!r}"
            )
        split, name, index = task["split"], task["env_name"], task["index"]
        if split not in SPLITS:
            raise ValueError(f"task split must be 'train' or 'test', got {split!r}")
        if (split, name) not in self.tasks:
            have = sorted({n for s, n in self.tasks if s == split})
            raise ValueError(
                f"{self.name} has no {split} class {name!r}; its {split} classes: {', '.join(have)}"
            )
        tasks = self.tasks[split, name]
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(tasks):
            raise ValueError(f"task index must be an int in [0, {len(tasks)}), got {index!r}")
        return tasks[index]

    def make(self, env_name: str, max_episode_steps: int) -> Any:
        """A new Meta-World env of class `env_name`, truncating at `max_episode_steps`."""
        env = self.classes[env_name](reward_function_version=self.reward_function_version)
        env.max_path_length = max_episode_steps
        return env


class _MetaWorldFamily(gym.Env):
    """One Meta-World env whose class follows the task. See the module docstring."""

    BENCHMARK: str
    metadata = {"render_modes": []}
    reports_success = True  # info["success"]: evaluation reports success rates

    def __init__(
        self,
        env_name: str | None = None,
        benchmark_seed: int = 0,
        reward_function_version: str = "v2",
        max_episode_steps: int = HORIZON,
    ) -> None:
        if self.BENCHMARK != "ML1" and env_name is not None:
            raise ValueError(f"env_name belongs to MetaWorld-ML1; {self.BENCHMARK} has fixed classes")
        if self.BENCHMARK == "ML1" and env_name is None:
            raise ValueError(
                "metarl/MetaWorld-ML1-v3 needs env_kwargs env_name, e.g. {'env_name': 'reach-v3'}"
            )
        self.bench = _Benchmark(self.BENCHMARK, int(benchmark_seed), env_name, reward_function_version)
        self.max_episode_steps = int(max_episode_steps)
        self._envs: dict[str, Any] = {}  # one Meta-World env per class played
        self.set_task(self.train_task_groups[0][0])
        self.observation_space = self._env.observation_space
        self.action_space = self._env.action_space

    @property
    def train_task_groups(self) -> list[list[Task]]:
        """Meta-World's training tasks, one list per class."""
        return self.bench.groups("train")

    @property
    def test_task_groups(self) -> list[list[Task]]:
        """Meta-World's test tasks (held-out classes for ML10/ML45), one list per class."""
        return self.bench.groups("test")

    @staticmethod
    def task_class(task: Task) -> str:
        """The Meta-World class a task belongs to (evaluation reports per class)."""
        return task["env_name"]

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        """`n` training tasks, balanced over the classes (see `metarl.tasks.draw_from_groups`)."""
        return draw_from_groups(self.train_task_groups, n, rng)

    def set_task(self, task: Task) -> None:
        """Switch to `task` (persistent across resets); takes effect at the next reset."""
        mw_task = self.bench.resolve(task)
        name = task["env_name"]
        if name not in self._envs:
            self._envs[name] = self.bench.make(name, self.max_episode_steps)
        self._env = self._envs[name]
        self._env.set_task(mw_task)
        self._task = dict(task)

    @property
    def task(self) -> Task:
        return dict(self._task)

    @task.setter
    def task(self, task: Task) -> None:
        self.set_task(task)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Meta-World's reset (deterministic given the task; `seed` seeds only this env's
        unused generator)."""
        super().reset(seed=seed)
        if options and "task" in options:
            self.set_task(options["task"])
        obs, info = self._env.reset()
        return obs, {**info, "task": self.task}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self._env.step(np.asarray(action, np.float32))
        return obs, float(reward), bool(terminated), bool(truncated), {**info, "task": self.task}

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


class MetaWorldML1Env(_MetaWorldFamily):
    BENCHMARK = "ML1"


class MetaWorldML10Env(_MetaWorldFamily):
    BENCHMARK = "ML10"


class MetaWorldML45Env(_MetaWorldFamily):
    BENCHMARK = "ML45"


class _MetaWorldVectorEnv(VectorEnv):
    """`num_envs` Meta-World sub-envs, each with its own task (of any class).

    Autoreset follows gymnasium's NEXT_STEP mode; a sub-env keeps its task across resets
    (``set_attr("task", [t0, t1, ...])``); ``reset(options={"reset_mask": mask})`` resets only
    the masked sub-envs. `step_slots` steps only the given sub-envs, with no time limit or
    autoreset (the samplers' path). ``episodes_in_sequence``: samplers give each sub-env one
    task and run its episodes one after another (a Meta-World env is 21 MB).
    """

    family: type[_MetaWorldFamily]
    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}
    episodes_in_sequence = True

    def __init__(self, num_envs: int, max_episode_steps: int = HORIZON, **env_kwargs: Any) -> None:
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.envs = [self.family(max_episode_steps=max_episode_steps, **env_kwargs) for _ in range(num_envs)]
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._observations = np.zeros(self.observation_space.shape, self.observation_space.dtype)
        self._elapsed = np.zeros(num_envs, np.int64)
        self._needs_reset = np.zeros(num_envs, bool)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return self.envs[0].sample_tasks(n, rng)

    @property
    def task(self) -> list[Task]:
        """The task of each sub-env (a list; set with ``set_attr("task", ...)``)."""
        return [env.task for env in self.envs]

    def set_attr(self, name: str, values: Any) -> None:
        for env, task in zip(self.envs, per_env_tasks(type(self).__name__, name, values, self.num_envs)):
            if task != env.task:
                env.set_task(task)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        if name != "task":
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} to get")
        return tuple(self.task)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        options = options or {}
        if "task" in options:
            self.set_attr("task", options["task"])
        mask = np.asarray(options.get("reset_mask", np.ones(self.num_envs, bool)), bool)
        seeds = seed if isinstance(seed, (list, tuple)) else [seed] * self.num_envs
        for index in np.flatnonzero(mask):
            self._observations[index] = self.envs[index].reset(seed=seeds[index])[0]
        self._elapsed[mask] = 0
        self._needs_reset[mask] = False
        return self._observations.copy(), {"task": self.task}

    def step_slots(
        self, actions: np.ndarray, slots: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Step sub-envs `slots` [k] with actions [k, 4]: (observations [k, 39], rewards [k],
        terminated [k], {"success": [k] bool})."""
        observations = np.empty((len(slots), *self.single_observation_space.shape))
        rewards, success = np.empty(len(slots)), np.empty(len(slots), bool)
        for row, slot in enumerate(np.asarray(slots).tolist()):
            obs, reward, _, _, info = self.envs[slot]._env.step(actions[row])
            observations[row], rewards[row], success[row] = obs, reward, info["success"]
        self._observations[slots] = observations
        return observations, rewards, np.zeros(len(slots), bool), {"success": success}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions, np.float32).reshape(self.num_envs, -1)
        resetting = self._needs_reset.copy()
        stepping = np.flatnonzero(~resetting)
        rewards = np.zeros(self.num_envs)
        success = np.zeros(self.num_envs, bool)
        _, rewards[stepping], _, info = self.step_slots(actions[stepping], stepping)
        success[stepping] = info["success"]
        if resetting.any():  # NEXT_STEP autoreset: sub-envs that ended last step reset now
            self.reset(options={"reset_mask": resetting})
        self._elapsed[stepping] += 1
        truncated = np.zeros(self.num_envs, bool)
        truncated[stepping] = self._elapsed[stepping] >= self.max_episode_steps
        self._needs_reset = truncated.copy()
        terminated = np.zeros(self.num_envs, bool)
        return (
            self._observations.copy(),
            rewards,
            terminated,
            truncated,
            {"success": success, "task": self.task},
        )

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()


class MetaWorldML1VectorEnv(_MetaWorldVectorEnv):
    family = MetaWorldML1Env


class MetaWorldML10VectorEnv(_MetaWorldVectorEnv):
    family = MetaWorldML10Env


class MetaWorldML45VectorEnv(_MetaWorldVectorEnv):
    family = MetaWorldML45Env
