"""Base of the numpy vector envs whose episodes draw all their randomness at reset.

Bandits and tabular MDPs draw one block of noise per episode from the sub-env's own
generator, so sub-env i seeded with s equals the single env reset with seed s. This base
holds what those vector envs share: the spaces, per-sub-env generators and their seeding,
NEXT_STEP autoreset, ``reset(seed=[...], options={"reset_mask": mask})`` and ``get_attr``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from metarl.tasks import Task


class EpisodeNoiseVectorEnv(VectorEnv):
    """`num_envs` sub-envs of one discrete-action family stepped in one numpy call.

    NEXT_STEP autoreset; ``set_attr("task", [...])`` sets per-sub-env tasks; ``reset(seed=
    [s_0, ...], options={"reset_mask": mask})`` resets (and reseeds, where a seed is given)
    only the masked sub-envs. Subclasses provide ``task``, ``set_attr``, `_start` (new
    episodes: draw their noise, reset their state), `_advance` (one step of every sub-env)
    and `_observations`.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def _init_vector(self, num_envs: int, template: gym.Env) -> None:
        self.num_envs = num_envs
        self._template = template
        self.single_observation_space = template.observation_space
        self.single_action_space = template.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._needs_reset = np.zeros(num_envs, bool)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return self._template.sample_tasks(n, rng)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        if name != "task":
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} to get")
        return tuple(self.task)

    # ---- per family -------------------------------------------------------------------
    def _start(self, which: np.ndarray) -> None:
        """Begin new episodes in the sub-envs where `which` [num_envs] is True."""
        raise NotImplementedError

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step every sub-env with actions [num_envs]: (rewards, truncated), each [num_envs]."""
        raise NotImplementedError

    def _observations(self) -> np.ndarray:
        raise NotImplementedError

    # ---- shared -------------------------------------------------------------------------
    def _begin(self, which: np.ndarray) -> None:
        self._start(which)
        self._needs_reset[which] = False

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        options = options or {}
        if "task" in options:
            self.set_attr("task", options["task"])
        which = np.asarray(options.get("reset_mask", np.ones(self.num_envs, bool)), bool)
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else seed
        for index, sub_seed in enumerate(seeds or []):
            if sub_seed is not None and which[index]:
                self._rngs[index] = seeding.np_random(int(sub_seed))[0]
        self._begin(which)
        return self._observations(), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions, np.int64).reshape(self.num_envs)
        num_actions = int(self.single_action_space.n)
        if ((actions < 0) | (actions >= num_actions)).any():
            raise ValueError(f"actions must lie in [0, {num_actions}), got {actions.tolist()}")
        resetting = self._needs_reset.copy()  # ended on the previous step: reset now
        rewards, truncated = self._advance(actions)
        self._begin(resetting)
        rewards[resetting] = 0.0
        truncated[resetting] = False
        self._needs_reset = truncated.copy()
        terminated = np.zeros(self.num_envs, bool)
        return self._observations(), rewards, terminated, truncated, {}
