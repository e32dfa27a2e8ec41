"""Discounted returns and generalised advantage estimation over padded episodes.

Episodes are not bootstrapped past their last step: a terminal state has value 0 by
definition, and an episode cut at the horizon is treated the same way, as in the MAML
paper's code; the linear baseline's time features absorb the horizon effect.
"""

from __future__ import annotations

import torch
from torch import Tensor


def discounted_returns(rewards: Tensor, mask: Tensor, discount: float) -> Tensor:
    """rewards, mask: [..., time] -> reward-to-go G_t = sum_k discount^k r_{t+k}: [..., time]."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = (rewards[..., t] + discount * running) * mask[..., t]
        returns[..., t] = running
    return returns


def gae(rewards: Tensor, values: Tensor, mask: Tensor, discount: float, gae_lambda: float) -> Tensor:
    """Generalised advantage estimates [..., time].

    rewards, values, mask: [..., time]. The value after the last valid step is 0.
    With gae_lambda = 1 this equals ``discounted_returns - values`` on valid steps.
    """
    values = values * mask
    next_values = torch.cat([values[..., 1:], torch.zeros_like(values[..., :1])], dim=-1)
    deltas = (rewards + discount * next_values - values) * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = (deltas[..., t] + discount * gae_lambda * running) * mask[..., t]
        advantages[..., t] = running
    return advantages


def normalize_per_task(values: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Standardise [tasks, episodes, time] values per task over its valid steps; 0 elsewhere."""
    dims = tuple(range(1, values.dim()))
    count = mask.sum(dims, keepdim=True).clamp(min=1)
    mean = (values * mask).sum(dims, keepdim=True) / count
    var = (((values - mean) * mask) ** 2).sum(dims, keepdim=True) / count
    return (values - mean) / (var.sqrt() + eps) * mask
