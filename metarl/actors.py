"""Acting in one env: a trained (or adapted) policy as ``act(observation) -> action``.

`Agent.adapt` returns an actor. Observations and actions are numpy, single ([obs_dim]) or
batched ([batch, obs_dim]); actions come out in the env's units (policy actions in [-1, 1]
mapped onto the action bounds when the run rescales actions, as its sampler did). After
each ``env.step`` call ``observe(reward, done)``: a recurrent (RL2) actor reads them at its
next step, an MLP (MAML) actor ignores them, so one loop serves both.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from metarl.episodes import Episodes
from metarl.policies import GaussianMLPPolicy, Params, RecurrentPolicy, stack_params
from metarl.sampling.worker import to_env_actions


class Actor(Protocol):
    """A policy that acts in an env (see the module docstring)."""

    last_action: np.ndarray | None  # the policy's own action of the last `act` (before rescaling)

    def act(self, observation: np.ndarray) -> np.ndarray: ...

    def observe(self, reward: float | np.ndarray, done: bool | np.ndarray) -> None: ...


class _Acting:
    """Shared by both actors: observations in, env actions out, seeded noise."""

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.Space,
        rescale_actions: bool,
        seed: int | None,
        deterministic: bool,
    ) -> None:
        self.obs_dim, self.action_space = obs_dim, action_space
        self.rescale_actions, self.deterministic = rescale_actions, deterministic
        self.rng = np.random.default_rng(seed)
        self.last_action: np.ndarray | None = None

    def _observations(self, observation: np.ndarray) -> tuple[Tensor, bool]:
        """[batch, obs_dim] float32 tensor, and whether one observation came in."""
        obs = np.asarray(observation, np.float32)
        if obs.size % self.obs_dim or obs.size == 0:
            raise ValueError(f"observations of shape {obs.shape} are not rows of {self.obs_dim} values")
        return torch.from_numpy(obs.reshape(-1, self.obs_dim)), obs.size == self.obs_dim and obs.ndim <= 1

    def _env_actions(self, actions: np.ndarray, single: bool) -> np.ndarray:
        self.last_action = actions[0] if single else actions
        if isinstance(self.action_space, gym.spaces.Discrete):
            env_actions = actions[:, 0].astype(np.int64)
        elif self.rescale_actions:
            env_actions = to_env_actions(actions, self.action_space)
        else:
            env_actions = actions.astype(self.action_space.dtype)
        return env_actions[0] if single else env_actions


class MLPActor(_Acting):
    """A MAML policy with one set of (adapted) parameters: each [...] (no task axis)."""

    def __init__(
        self,
        policy: GaussianMLPPolicy,
        params: Params,
        action_space: gym.Space,
        rescale_actions: bool = True,
        seed: int | None = None,
        deterministic: bool = False,
    ) -> None:
        super().__init__(policy.obs_dim, action_space, rescale_actions, seed, deterministic)
        self.policy = policy
        self.params = stack_params({name: value.detach() for name, value in params.items()}, 1)

    def act(self, observation: np.ndarray) -> np.ndarray:
        """An action per observation: the Gaussian's sample (its mean if `deterministic`)."""
        obs, single = self._observations(observation)
        with torch.no_grad():
            dist = self.policy.distribution(obs[None], self.params)
        mean, std = dist.loc[0].numpy(), dist.scale[0].numpy()
        actions = (
            mean if self.deterministic else mean + std * self.rng.standard_normal(mean.shape, np.float32)
        )
        return self._env_actions(actions, single)

    def observe(self, reward: float | np.ndarray, done: bool | np.ndarray) -> None:
        """Nothing to remember: the parameters are the adaptation."""


class RecurrentActor(_Acting):
    """An RL2 policy that carries its GRU state across the episodes of a trial.

    `act` reads the observation and what `observe` recorded of the last step (action,
    reward, episode end); `reset_trial` starts a new trial (a new task) from zero state.
    """

    def __init__(
        self,
        policy: RecurrentPolicy,
        action_space: gym.Space,
        rescale_actions: bool = True,
        seed: int | None = None,
        deterministic: bool = False,
    ) -> None:
        super().__init__(policy.obs_dim, action_space, rescale_actions, seed, deterministic)
        self.policy = policy
        self.hidden: Tensor | None = None  # [batch, hidden_size]
        self.previous: Tensor | None = None  # [batch, input_dim - obs_dim]
        self._last: tuple[Tensor, Tensor] | None = None  # (observations, actions) of the last act

    def reset_trial(self) -> None:
        self.hidden = self.previous = self._last = None

    def act(self, observation: np.ndarray) -> np.ndarray:
        obs, single = self._observations(observation)
        if self.hidden is None or len(self.hidden) != len(obs):
            self.hidden = self.policy.initial_hidden(len(obs))
            self.previous = torch.zeros(len(obs), self.policy.input_dim - self.policy.obs_dim)
        with torch.no_grad():
            dist, self.hidden = self.policy.step(torch.cat([obs, self.previous], dim=1), self.hidden)
            if self.deterministic:
                actions = (
                    dist.probs.argmax(-1, keepdim=True).to(torch.float32)
                    if self.policy.discrete
                    else dist.loc
                )
            else:
                noise = self.policy.draw_noise(self.rng, (len(obs), *self.policy.noise_shape()))
                actions = self.policy.sample_with_noise(dist, torch.from_numpy(noise))
        self._last = (obs, actions)
        return self._env_actions(actions.numpy(), single)

    def observe(self, reward: float | np.ndarray, done: bool | np.ndarray) -> None:
        """Record the last step's reward and whether it ended an episode (terminated or
        truncated): the next `act` reads them."""
        if self._last is None:
            raise RuntimeError("observe() comes after act()")
        obs, actions = self._last
        rewards = torch.as_tensor(np.asarray(reward, np.float32).reshape(len(obs)))
        ended = torch.as_tensor(np.asarray(done, np.float32).reshape(len(obs)))
        self.previous = self.policy.previous_step_inputs(obs, actions, rewards, ended)


def collect_episodes(
    env: gym.Env, actor: Actor, num_episodes: int, horizon: int, seed: int | None = None
) -> Episodes:
    """Play `num_episodes` episodes of at most `horizon` steps in `env` (its task as set) with
    `actor`: Episodes [1, num_episodes, horizon, ...] of the policy's own actions."""
    obs_dim = int(np.prod(env.observation_space.shape))
    shape = (1, num_episodes, horizon)
    observations = np.zeros((*shape, obs_dim), np.float32)
    actions: np.ndarray | None = None
    rewards, mask = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    terminated = np.zeros((1, num_episodes), bool)
    for episode in range(num_episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        for t in range(horizon):
            action = actor.act(obs)
            if actions is None:
                actions = np.zeros((*shape, np.asarray(actor.last_action).size), np.float32)
            observations[0, episode, t] = np.asarray(obs, np.float32).ravel()
            actions[0, episode, t] = np.asarray(actor.last_action).ravel()
            obs, reward, ended, truncated, _ = env.step(action)
            rewards[0, episode, t], mask[0, episode, t] = reward, 1.0
            done = ended or truncated or t == horizon - 1
            actor.observe(reward, done)
            if ended or truncated:
                terminated[0, episode] = ended
                break
    arrays: dict[str, Any] = {
        "observations": observations,
        "actions": actions,
        "rewards": rewards,
        "mask": mask,
        "terminated": terminated,
    }
    return Episodes.from_numpy(arrays, [dict(env.unwrapped.task)])
