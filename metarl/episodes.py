"""Episodes of a meta-batch as padded tensors.

Layout ``[tasks, episodes, time, ...]``; steps after an episode ended are zero and
``mask`` is 0 there. ``time`` has length ``horizon`` (the longest allowed episode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from metarl.tasks import Task


@dataclass
class Episodes:
    """A meta-batch of episodes.

    observations: [tasks, episodes, time, obs_dim] float32 (observation before each action)
    actions:      [tasks, episodes, time, act_dim] float32
    rewards:      [tasks, episodes, time] float32
    mask:         [tasks, episodes, time] float32, 1 on steps that happened
    terminated:   [tasks, episodes] bool, the episode ended in a terminal state
                  (as opposed to being cut at the horizon)
    tasks:        one task dict per task row
    success:      [tasks, episodes] bool, the env reported ``info["success"]`` true at some
                  step of the episode (Meta-World's criterion); all False for a family that
                  reports no success; None where not recorded
    """

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor
    terminated: Tensor
    tasks: list[Task]
    success: Tensor | None = None

    @classmethod
    def from_numpy(cls, arrays: dict[str, np.ndarray], tasks: list[Task]) -> Episodes:
        return cls(
            observations=torch.from_numpy(arrays["observations"]),
            actions=torch.from_numpy(arrays["actions"]),
            rewards=torch.from_numpy(arrays["rewards"]),
            mask=torch.from_numpy(arrays["mask"]),
            terminated=torch.from_numpy(arrays["terminated"]),
            tasks=list(tasks),
            success=torch.from_numpy(arrays["success"]) if "success" in arrays else None,
        )

    @property
    def num_tasks(self) -> int:
        return self.rewards.shape[0]

    @property
    def episodes_per_task(self) -> int:
        return self.rewards.shape[1]

    @property
    def horizon(self) -> int:
        return self.rewards.shape[2]

    @property
    def lengths(self) -> Tensor:
        """[tasks, episodes] number of steps of each episode."""
        return self.mask.sum(-1).long()

    @property
    def env_steps(self) -> int:
        return int(self.mask.sum().item())

    def first(self, num_episodes: int) -> Episodes:
        """The first `num_episodes` episodes of every task (views, no copy)."""
        return Episodes(
            observations=self.observations[:, :num_episodes],
            actions=self.actions[:, :num_episodes],
            rewards=self.rewards[:, :num_episodes],
            mask=self.mask[:, :num_episodes],
            terminated=self.terminated[:, :num_episodes],
            tasks=self.tasks,
            success=None if self.success is None else self.success[:, :num_episodes],
        )

    def leading_tasks(self, num_tasks: int) -> Episodes:
        """The episodes of the first `num_tasks` tasks (views, no copy)."""
        return Episodes(
            observations=self.observations[:num_tasks],
            actions=self.actions[:num_tasks],
            rewards=self.rewards[:num_tasks],
            mask=self.mask[:num_tasks],
            terminated=self.terminated[:num_tasks],
            tasks=self.tasks[:num_tasks],
            success=None if self.success is None else self.success[:num_tasks],
        )

    def episode_returns(self) -> Tensor:
        """[tasks, episodes] undiscounted return of each episode."""
        return (self.rewards * self.mask).sum(-1)

    def task_returns(self) -> Tensor:
        """[tasks] mean undiscounted episode return per task."""
        return self.episode_returns().mean(-1)
