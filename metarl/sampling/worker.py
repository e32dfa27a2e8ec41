"""The rollout worker every sampler backend runs.

A worker owns a vector env over its share of (task, episode) slots and a copy of the
policy. It runs whole episodes, one batched policy forward per step over all its slots,
each slot with the (adapted) parameters of its task. All randomness of a slot (its reset
seed and its action noise) comes from that slot's own seed, so the episodes do not depend
on how slots are split among workers.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from metarl.policies import GaussianMLPPolicy
from metarl.tasks import Task


def make_vector_env(
    env_id: str, env_kwargs: dict[str, Any], num_envs: int, horizon: int
) -> gym.vector.VectorEnv:
    """The family's own numpy-batched vector env if it registers one, else a sync vector env.

    Episodes are truncated at `horizon` steps, whatever the registered time limit.
    """
    import envs  # noqa: F401  (registers metarl/* ids)

    spec = gym.spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    kwargs = {**env_kwargs, "max_episode_steps": horizon}
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **kwargs)


def to_env_actions(actions: np.ndarray, space: gym.spaces.Box) -> np.ndarray:
    """Map policy actions in [-1, 1] affinely onto the Box bounds, then clip to them.

    actions: [slots, *action_shape]. This is rllab's ``normalize`` convention (used by the
    MAML paper's code): a unit-scale Gaussian policy explores the whole action range
    whatever its units. Unbounded dimensions pass through unchanged.
    """
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    bounded = np.isfinite(low) & np.isfinite(high)
    scaled = np.where(bounded, low + (actions + 1.0) * 0.5 * (high - low), actions)
    return np.clip(scaled, low, high).astype(space.dtype)


class RolloutWorker:
    """Runs episodes for a share of slots. Constructed once per worker, reused every call."""

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        policy_spec: dict[str, Any],
        horizon: int,
        rescale_actions: bool = True,
    ) -> None:
        self.env_id, self.env_kwargs, self.horizon = env_id, dict(env_kwargs), horizon
        self.rescale_actions = rescale_actions
        self.policy = GaussianMLPPolicy(**policy_spec)
        self._envs: dict[int, gym.vector.VectorEnv] = {}

    def _env(self, num_slots: int) -> gym.vector.VectorEnv:
        if num_slots not in self._envs:
            self._envs[num_slots] = make_vector_env(self.env_id, self.env_kwargs, num_slots, self.horizon)
        return self._envs[num_slots]

    def rollout(
        self,
        tasks: list[Task],
        params: dict[str, np.ndarray],
        slot_task_index: np.ndarray,
        slot_seeds: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Run one episode per slot.

        tasks: the tasks this worker serves; params: each [len(tasks), ...], the parameters
        per task; slot_task_index: [slots] index into `tasks`; slot_seeds: [slots, 2] uint32
        (env reset seed, action-noise seed). Returns arrays [slots, horizon, ...] as in
        `Episodes` (terminated is [slots]).
        """
        num_slots, horizon = len(slot_task_index), self.horizon
        env = self._env(num_slots)
        env.set_attr("task", [tasks[i] for i in slot_task_index])
        obs, _ = env.reset(seed=[int(s) for s in slot_seeds[:, 0]])
        noise_shape = self.policy.noise_shape()
        noise = np.stack(
            [
                self.policy.draw_noise(np.random.default_rng(int(seed)), (horizon, *noise_shape))
                for seed in slot_seeds[:, 1]
            ]
        )
        index = torch.from_numpy(np.asarray(slot_task_index, dtype=np.int64))
        slot_params = {name: torch.from_numpy(value)[index] for name, value in params.items()}

        obs_dim = int(np.prod(env.single_observation_space.shape))
        act_shape = env.single_action_space.shape
        observations = np.zeros((num_slots, horizon, obs_dim), np.float32)
        actions = np.zeros((num_slots, horizon, *act_shape), np.float32)
        rewards = np.zeros((num_slots, horizon), np.float32)
        mask = np.zeros((num_slots, horizon), np.float32)
        terminated = np.zeros(num_slots, bool)
        active = np.ones(num_slots, bool)
        for t in range(horizon):
            obs = np.asarray(obs, np.float32).reshape(num_slots, obs_dim)
            with torch.no_grad():
                dist = self.policy.distribution(torch.from_numpy(obs).unsqueeze(1), slot_params)
                action = self.policy.sample_with_noise(dist, torch.from_numpy(noise[:, t : t + 1]))
            action = action[:, 0].numpy()
            observations[active, t] = obs[active]
            actions[active, t] = action[active]
            mask[active, t] = 1.0
            if self.rescale_actions:
                obs, reward, term, trunc, _ = env.step(to_env_actions(action, env.single_action_space))
            else:
                obs, reward, term, trunc, _ = env.step(action)
            rewards[active, t] = np.asarray(reward, np.float32)[active]
            term = np.asarray(term, bool)
            terminated |= active & term
            active &= ~(term | np.asarray(trunc, bool))
            if not active.any():
                break
        return {
            "observations": observations,
            "actions": actions,
            "rewards": rewards,
            "mask": mask,
            "terminated": terminated,
        }

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
