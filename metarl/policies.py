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
from torch.distributions import Categorical, Normal

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


class RecurrentPolicy(nn.Module):
    """GRU policy and value function for RL2 (Duan et al. 2016).

    The input at each step is (observation, previous action, previous reward, done flag):
    the previous action one-hot for discrete actions, the flag 1 on the first step of every
    episode but the trial's first, when the previous step ended an episode (`trial_inputs`).
    With `reward_by_action`, the GRUs also read the previous action features times the
    previous reward (`gru_inputs`): the same information, but a bandit arm's wins then
    arrive on their own input instead of needing a GRU unit to AND the arm with the reward
    (behaviour cloning of greedy at 100 pulls, 10 arms, 64 units: 75.29 after 60k trials
    against 63.39 without; `benchmarks/bandit_imitation.py`).
    With `state_action_inputs` the input also carries the previous observation (the one the
    previous action was taken in), and the GRUs read the one-hot of the (previous
    observation, previous action) pair and that pair times the previous reward: for a
    tabular MDP, each reward arrives in the slot of the state-action pair that earned it.
    With `observation_heads` the action and value heads also read the current observation
    times the GRU features (`_readout`): for a one-hot state, a linear head of its own per
    state, so what the GRU keeps per state-action pair can be read out for the state the
    agent is in (without it RL2 on tabular MDPs stalls at the level of a policy blind to
    the state; docs/results.md, "Tabular MDPs").
    The hidden state runs through a whole trial (several episodes on one task) and starts
    at zero for every trial. A second GRU of the same size computes the value, so a
    trust-region step on the policy leaves the value's features alone.

    Parameters: ``gru.*``, ``action_head.*``, ``log_std`` [act_dim] (Gaussian head only);
    ``value_gru.*``, ``value_head.*`` (`value_parameters`); with `observation_heads` also
    ``action_head_by_obs`` [obs_dim, H, act_dim] and ``value_head_by_obs`` [obs_dim, H, 1].
    Actions are stored as [..., 1] action indices (float) for the categorical head and
    [..., act_dim] for the Gaussian head.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        discrete: bool,
        hidden_size: int = 256,
        init_std: float = 1.0,
        generator: torch.Generator | None = None,
        reward_by_action: bool = False,
        value_task_dim: int = 0,
        state_action_inputs: bool = False,
        observation_heads: bool = False,
    ) -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.discrete = int(obs_dim), int(act_dim), bool(discrete)
        self.hidden_size = int(hidden_size)
        self.reward_by_action = bool(reward_by_action)
        self.value_task_dim = int(value_task_dim)
        self.state_action_inputs = bool(state_action_inputs)
        self.observation_heads = bool(observation_heads)
        # (s, a, r, d), plus the previous observation with state_action_inputs
        self.input_dim = self.obs_dim + self.act_dim + 2 + (self.obs_dim if self.state_action_inputs else 0)
        gru_input_dim = self.input_dim + (self.act_dim if self.reward_by_action else 0)
        gru_input_dim += 2 * self.obs_dim * self.act_dim if self.state_action_inputs else 0
        self.gru = nn.GRU(gru_input_dim, self.hidden_size, batch_first=True)
        self.action_head = nn.Linear(self.hidden_size, self.act_dim)
        self.value_gru = nn.GRU(gru_input_dim + self.value_task_dim, self.hidden_size, batch_first=True)
        self.value_head = nn.Linear(self.hidden_size, 1)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((self.act_dim,), math.log(init_std)))
        bound = 1.0 / math.sqrt(self.hidden_size)  # torch's GRU default, drawn from `generator`
        with torch.no_grad():
            for name, tensor in self.named_parameters():
                if name == "log_std":
                    continue
                scale = 0.01 * bound if name.startswith("action_head") else bound  # near-uniform start
                tensor.copy_((torch.rand(tensor.shape, generator=generator) * 2 - 1) * scale)
        if self.observation_heads:  # registered and drawn last: without them, the draws are as before
            for name, width, scale in (
                ("action_head_by_obs", self.act_dim, 0.01 * bound),
                ("value_head_by_obs", 1, bound),
            ):
                weight = (
                    torch.rand(self.obs_dim, self.hidden_size, width, generator=generator) * 2 - 1
                ) * scale
                self.register_parameter(name, nn.Parameter(weight))

    @property
    def stored_action_dim(self) -> int:
        """Width of an action in `Episodes.actions`: 1 (an index) or act_dim."""
        return 1 if self.discrete else self.act_dim

    def spec(self) -> dict:
        """Constructor kwargs that rebuild this architecture (e.g. in a worker process)."""
        return {
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "discrete": self.discrete,
            "hidden_size": self.hidden_size,
            "reward_by_action": self.reward_by_action,
            "value_task_dim": self.value_task_dim,
            "state_action_inputs": self.state_action_inputs,
            "observation_heads": self.observation_heads,
        }

    def policy_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("value_")]

    def value_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name.startswith("value_")]

    def action_features(self, actions: Tensor) -> Tensor:
        """actions [..., stored_action_dim] -> [..., act_dim] (one-hot for discrete)."""
        if self.discrete:
            return nn.functional.one_hot(actions[..., 0].long(), self.act_dim).to(actions.dtype)
        return actions

    def previous_step_inputs(self, obs: Tensor, actions: Tensor, rewards: Tensor, ended: Tensor) -> Tensor:
        """What the next step reads of this one, [..., input_dim - obs_dim]: action features,
        reward, the flag that this step ended an episode, and (with `state_action_inputs`)
        obs, the observation the action was taken in. obs [..., obs_dim], actions [...,
        stored_action_dim], rewards [...], ended [...]. The one definition of that layout: the
        sampler calls it step by step, `trial_inputs` over whole trials."""
        parts = [
            self.action_features(actions),
            rewards[..., None].to(obs.dtype),
            ended[..., None].to(obs.dtype),
        ]
        return torch.cat(parts + ([obs] if self.state_action_inputs else []), dim=-1)

    def trial_inputs(self, obs: Tensor, actions: Tensor, rewards: Tensor, episode_starts: Tensor) -> Tensor:
        """Inputs [trials, T, input_dim] of whole trials laid out in time order.

        obs: [trials, T, obs_dim]; actions: [trials, T, stored_action_dim]; rewards:
        [trials, T]; episode_starts: [trials, T], 1 where a step begins an episode. Step t
        sees `previous_step_inputs` of step t-1 (zeros at t = 0): its action and reward, the
        flag of an episode boundary between them, and with `state_action_inputs` its
        observation.
        """
        ended = episode_starts[:, 1:]  # step t-1 ended an episode where step t starts one
        previous = obs.new_zeros(*obs.shape[:2], self.input_dim - self.obs_dim)
        previous[:, 1:] = self.previous_step_inputs(obs[:, :-1], actions[:, :-1], rewards[:, :-1], ended)
        return torch.cat([obs, previous], dim=-1)

    def gru_inputs(self, inputs: Tensor) -> Tensor:
        """(s, a, r, d) inputs [..., input_dim] -> what the GRUs read [..., GRU input width]:
        the same, plus (previous action features x previous reward) [..., act_dim] when
        `reward_by_action` (for a one-hot action: the reward, in the slot of the arm that
        earned it); then, with `state_action_inputs`, the (previous observation x previous
        action features) outer product [..., obs_dim * act_dim] and the same times the
        previous reward."""
        start = self.obs_dim
        previous_actions = inputs[..., start : start + self.act_dim]
        previous_rewards = inputs[..., start + self.act_dim : start + self.act_dim + 1]
        parts = [inputs]
        if self.reward_by_action:
            parts.append(previous_actions * previous_rewards)
        if self.state_action_inputs:
            previous_obs = inputs[..., start + self.act_dim + 2 :]
            pairs = (previous_obs[..., :, None] * previous_actions[..., None, :]).flatten(-2)
            parts += [pairs, pairs * previous_rewards]
        return torch.cat(parts, dim=-1) if len(parts) > 1 else inputs

    def _readout(self, head: nn.Linear, by_obs: str, features: Tensor, obs: Tensor) -> Tensor:
        """head(features) [..., out], plus with `observation_heads` a bilinear term
        sum_{o,h} obs_o features_h W[o, h, :], W = `by_obs` [obs_dim, H, out]: for a one-hot
        observation, a linear readout of its own per state."""
        out = head(features)
        if self.observation_heads:
            weight = getattr(self, by_obs)
            per_obs = torch.einsum("...h,oha->...oa", features, weight)  # [..., obs_dim, out]
            out = out + (obs[..., :, None] * per_obs).sum(-2)
        return out

    def _head(self, features: Tensor, obs: Tensor) -> Categorical | Normal:
        """The action distribution from GRU features [..., H] and observations [..., obs_dim]."""
        out = self._readout(self.action_head, "action_head_by_obs", features, obs)
        if self.discrete:
            return Categorical(logits=out, validate_args=False)
        return Normal(out, self.log_std.exp().expand_as(out), validate_args=False)

    def detached(self, dist: Categorical | Normal) -> Categorical | Normal:
        """The same distribution without its graph (the "old" policy of a KL)."""
        if self.discrete:
            return Categorical(logits=dist.logits.detach(), validate_args=False)
        return Normal(dist.loc.detach(), dist.scale.detach(), validate_args=False)

    def action_distribution(self, inputs: Tensor) -> Categorical | Normal:
        """The policy alone over whole trials: inputs [trials, T, input_dim] -> dist [trials, T]."""
        features, _ = self.gru(self.gru_inputs(inputs))
        return self._head(features, inputs[..., : self.obs_dim])

    def values(self, inputs: Tensor, task_features: Tensor | None = None) -> Tensor:
        """The value alone over whole trials: inputs [trials, T, input_dim] -> [trials, T].

        With `value_task_dim` > 0 the value GRU also reads the trial's task at every step,
        task_features [trials, value_task_dim] (`metarl.tasks.task_features`): a privileged
        critic, used only for training's baseline; the policy never sees the task.
        """
        value_inputs = self.gru_inputs(inputs)
        if self.value_task_dim:
            expected = (inputs.shape[0], self.value_task_dim)
            if task_features is None or tuple(task_features.shape) != expected:
                got = None if task_features is None else tuple(task_features.shape)
                raise ValueError(
                    f"this value GRU reads the task: task_features must be {expected}, got {got}"
                )
            per_step = task_features[:, None, :].expand(-1, inputs.shape[1], -1).to(value_inputs.dtype)
            value_inputs = torch.cat([value_inputs, per_step], dim=-1)
        value_features, _ = self.value_gru(value_inputs)
        obs = inputs[..., : self.obs_dim]
        return self._readout(self.value_head, "value_head_by_obs", value_features, obs)[..., 0]

    def forward_trials(
        self, inputs: Tensor, task_features: Tensor | None = None
    ) -> tuple[Categorical | Normal, Tensor]:
        """(action distribution [trials, T], values [trials, T]) from zero hidden states;
        one batched GRU call each for policy and value (see `values` for task_features)."""
        return self.action_distribution(inputs), self.values(inputs, task_features)

    def initial_hidden(self, num_trials: int) -> Tensor:
        """Zero hidden state [num_trials, hidden_size]."""
        return torch.zeros(num_trials, self.hidden_size)

    def step(self, inputs: Tensor, hidden: Tensor) -> tuple[Categorical | Normal, Tensor]:
        """One step of the policy GRU: inputs [n, input_dim], hidden [n, H] -> (dist [n], hidden)."""
        features, hidden = self.gru(self.gru_inputs(inputs)[:, None], hidden[None])
        return self._head(features[:, 0], inputs[:, : self.obs_dim]), hidden[0]

    def noise_shape(self) -> tuple[int, ...]:
        return () if self.discrete else (self.act_dim,)

    def draw_noise(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Per-step noise: uniforms (inverse-CDF sampling) or standard normals."""
        if self.discrete:
            return rng.random(shape, dtype=np.float32)
        return rng.standard_normal(shape, dtype=np.float32)

    def sample_with_noise(self, dist: Categorical | Normal, noise: Tensor) -> Tensor:
        """Actions [..., stored_action_dim] from noise of `noise_shape` per step."""
        if self.discrete:
            cdf = dist.probs.cumsum(-1)
            index = (noise[..., None] >= cdf).sum(-1).clamp(max=self.act_dim - 1)
            return index[..., None].to(torch.float32)
        return dist.loc + dist.scale * noise

    def log_prob(self, dist: Categorical | Normal, actions: Tensor) -> Tensor:
        """Log-probability of stored actions [..., stored_action_dim] -> [...]."""
        if self.discrete:
            return dist.log_prob(actions[..., 0].long())
        return dist.log_prob(actions).sum(-1)

    def entropy(self, dist: Categorical | Normal) -> Tensor:
        return dist.entropy() if self.discrete else dist.entropy().sum(-1)

    def kl(self, old: Categorical | Normal, new: Categorical | Normal) -> Tensor:
        """KL(old || new) per step: [...]."""
        kl = torch.distributions.kl_divergence(old, new)
        return kl if self.discrete else kl.sum(-1)


def make_recurrent_policy(
    observation_space,
    action_space,
    hidden_size: int,
    init_std: float,
    generator: torch.Generator | None = None,
    reward_by_action: bool = False,
    value_task_dim: int = 0,
    state_action_inputs: bool = False,
    observation_heads: bool = False,
) -> RecurrentPolicy:
    """The RL2 policy for a pair of gymnasium spaces (Discrete -> categorical, Box -> Gaussian)."""
    import gymnasium as gym

    obs_dim = int(np.prod(observation_space.shape))
    if isinstance(action_space, gym.spaces.Discrete):
        act_dim, discrete = int(action_space.n), True
    elif isinstance(action_space, gym.spaces.Box):
        act_dim, discrete = int(np.prod(action_space.shape)), False
    else:
        raise NotImplementedError(f"no recurrent policy for action space {action_space}")
    return RecurrentPolicy(
        obs_dim,
        act_dim,
        discrete,
        hidden_size,
        init_std,
        generator,
        reward_by_action,
        value_task_dim,
        state_action_inputs,
        observation_heads,
    )
