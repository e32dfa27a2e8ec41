"""The rollout worker every sampler backend runs.

A worker owns envs for its share of (task, episode) slots (the family's numpy-batched
vector env, or one env per slot for MuJoCo families, stepping only running episodes) and a
copy of the policy. It runs whole episodes, one batched policy forward per step over all its slots,
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


class BatchedSlots:
    """All slots in the family's own numpy-batched vector env (``vector_entry_point``).

    Such envs are cheap to step, so every sub-env steps every time; finished slots are
    ignored by the caller.
    """

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], num_slots: int, horizon: int) -> None:
        self.env = gym.make_vec(
            env_id,
            num_envs=num_slots,
            vectorization_mode="vector_entry_point",
            **{**env_kwargs, "max_episode_steps": horizon},
        )
        self.action_space = self.env.single_action_space

    def reset(self, tasks: list[Task], seeds: np.ndarray) -> np.ndarray:
        self.env.set_attr("task", tasks)
        return self.env.reset(seed=[int(s) for s in seeds])[0]

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, ...]:
        obs, reward, terminated, truncated, _ = self.env.step(actions)
        return obs, np.asarray(reward), np.asarray(terminated, bool), np.asarray(truncated, bool)

    def close(self) -> None:
        self.env.close()


class SingleEnvSlots:
    """One gymnasium env per slot (MuJoCo families); only slots whose episode is running
    are stepped, so no physics is spent on finished episodes."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], num_slots: int, horizon: int) -> None:
        self.envs = [
            gym.make(env_id, max_episode_steps=horizon, disable_env_checker=True, **env_kwargs)
            for _ in range(num_slots)
        ]
        self.action_space = self.envs[0].action_space

    def reset(self, tasks: list[Task], seeds: np.ndarray) -> np.ndarray:
        observations = []
        for env, task, seed in zip(self.envs, tasks, seeds):
            observations.append(env.reset(seed=int(seed), options={"task": task})[0])
        return np.stack(observations)

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, ...]:
        num_slots = len(self.envs)
        obs = np.zeros((num_slots, *self.envs[0].observation_space.shape), np.float64)
        reward = np.zeros(num_slots)
        terminated = np.zeros(num_slots, bool)
        truncated = np.zeros(num_slots, bool)
        for slot in np.flatnonzero(active):
            obs[slot], reward[slot], terminated[slot], truncated[slot], _ = self.envs[slot].step(
                actions[slot]
            )
        return obs, reward, terminated, truncated

    def close(self) -> None:
        for env in self.envs:
            env.close()


def make_slots(
    env_id: str, env_kwargs: dict[str, Any], num_slots: int, horizon: int
) -> BatchedSlots | SingleEnvSlots:
    """The family's numpy-batched vector env if it registers one, else one env per slot.

    Episodes are truncated at `horizon` steps, whatever the registered time limit.
    """
    import envs  # noqa: F401  (registers metarl/* ids)

    batched = gym.spec(env_id).vector_entry_point is not None
    return (BatchedSlots if batched else SingleEnvSlots)(env_id, env_kwargs, num_slots, horizon)


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
        self._slots: dict[int, BatchedSlots | SingleEnvSlots] = {}

    def _env(self, num_slots: int) -> BatchedSlots | SingleEnvSlots:
        if num_slots not in self._slots:
            self._slots[num_slots] = make_slots(self.env_id, self.env_kwargs, num_slots, self.horizon)
        return self._slots[num_slots]

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
        obs = env.reset([tasks[i] for i in slot_task_index], slot_seeds[:, 0])
        noise_shape = self.policy.noise_shape()
        noise = np.stack(
            [
                self.policy.draw_noise(np.random.default_rng(int(seed)), (horizon, *noise_shape))
                for seed in slot_seeds[:, 1]
            ]
        )
        index = torch.from_numpy(np.asarray(slot_task_index, dtype=np.int64))
        slot_params = {name: torch.from_numpy(value)[index] for name, value in params.items()}

        obs_dim = int(np.prod(np.shape(obs)[1:]))
        act_shape = env.action_space.shape
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
            env_action = to_env_actions(action, env.action_space) if self.rescale_actions else action
            obs, reward, term, trunc = env.step(env_action, active)
            rewards[active, t] = reward[active].astype(np.float32)
            terminated |= active & term
            active &= ~(term | trunc)
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
        for slots in self._slots.values():
            slots.close()
        self._slots.clear()
