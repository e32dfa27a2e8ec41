"""Policies that run with functional, per-task parameters.

A policy's parameters are a dict ``{name: tensor}``. The functional forward takes them
*stacked over tasks*: every tensor has a leading ``[tasks]`` dimension, and observations
come as ``[tasks, *batch, obs_dim]``. Layers are batched matrix products over tasks, so one
call evaluates every task with its own (adapted) parameters, and autograd through it gives
per-task gradients at once.

Sampling is reparameterised by pre-drawn noise (`sample_with_noise`), so an episode's
actions depend only on its own noise stream, never on how slots are split among workers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Normal

Params = dict[str, Tensor]

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def stack_params(params: Params, num_tasks: int) -> Params:
    """The same parameters for each of `num_tasks` tasks: each tensor gets a leading [tasks]."""
    return {name: value.unsqueeze(0).expand(num_tasks, *value.shape) for name, value in params.items()}


def detach_params(params: Params) -> Params:
    return {name: value.detach() for name, value in params.items()}


class GaussianMLPPolicy(nn.Module):
    """Diagonal Gaussian over actions; mean from an MLP, state-independent log std.

    Parameters: ``w{i}`` [in, out] and ``b{i}`` [out] per layer, ``log_std`` [act_dim].
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
        init_std: float = 1.0,
        min_std: float = 1e-6,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.activation = activation
        self.min_log_std = math.log(min_std)
        sizes = (self.obs_dim, *self.hidden_sizes, self.act_dim)
        self.num_layers = len(sizes) - 1
        for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform
            weight = (torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) * bound
            self.register_parameter(f"w{index}", nn.Parameter(weight))
            self.register_parameter(f"b{index}", nn.Parameter(torch.zeros(fan_out)))
        self.log_std = nn.Parameter(torch.full((self.act_dim,), math.log(init_std)))

    def spec(self) -> dict:
        """Constructor kwargs that rebuild this architecture (e.g. in a worker process)."""
        return {
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "hidden_sizes": list(self.hidden_sizes),
            "activation": self.activation,
            "min_std": math.exp(self.min_log_std),
        }

    def params(self) -> Params:
        """The module's own parameters (leaves that require grad), by name."""
        return dict(self.named_parameters())

    def distribution(self, obs: Tensor, params: Params) -> Normal:
        """obs: [tasks, *batch, obs_dim]; params stacked over tasks -> Normal [tasks, *batch, act_dim]."""
        num_tasks, batch_shape = obs.shape[0], obs.shape[1:-1]
        hidden = obs.reshape(num_tasks, -1, self.obs_dim)
        act = ACTIVATIONS[self.activation]
        for index in range(self.num_layers):
            hidden = torch.baddbmm(params[f"b{index}"].unsqueeze(1), hidden, params[f"w{index}"])
            if index < self.num_layers - 1:
                hidden = act(hidden)
        mean = hidden.reshape(num_tasks, *batch_shape, self.act_dim)
        log_std = params["log_std"].clamp(min=self.min_log_std)
        std = log_std.exp().reshape(num_tasks, *([1] * len(batch_shape)), self.act_dim)
        return Normal(mean, std.expand_as(mean), validate_args=False)

    def noise_shape(self) -> tuple[int, ...]:
        """Shape of the per-step noise `sample_with_noise` consumes."""
        return (self.act_dim,)

    @staticmethod
    def draw_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    @staticmethod
    def sample_with_noise(dist: Normal, noise: Tensor) -> Tensor:
        """Action = mean + std * noise; noise has the distribution's shape."""
        return dist.loc + dist.scale * noise

    @staticmethod
    def log_prob(dist: Normal, actions: Tensor) -> Tensor:
        """Log density of actions [..., act_dim] -> [...] (summed over action dims)."""
        return dist.log_prob(actions).sum(-1)

    @staticmethod
    def kl(old: Normal, new: Normal) -> Tensor:
        """KL(old || new) per step: [...]."""
        return torch.distributions.kl_divergence(old, new).sum(-1)


def make_policy(
    observation_space,
    action_space,
    hidden_sizes: Sequence[int],
    activation: str,
    init_std: float,
    generator: torch.Generator | None = None,
) -> GaussianMLPPolicy:
    """The policy for a pair of gymnasium spaces (Box actions -> Gaussian)."""
    import gymnasium as gym

    if not isinstance(action_space, gym.spaces.Box):
        raise NotImplementedError(f"no policy for action space {action_space}; only Box (Gaussian) so far")
    obs_dim = int(np.prod(observation_space.shape))
    act_dim = int(np.prod(action_space.shape))
    return GaussianMLPPolicy(obs_dim, act_dim, hidden_sizes, activation, init_std, generator=generator)
