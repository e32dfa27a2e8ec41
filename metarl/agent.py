"""The surface every agent offers, and building one from a config.

Agents live in `metarl.agents` and register themselves (`metarl.registry`); the core builds
them by name with `build` and never imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from metarl import seeding
from metarl.actors import Actor
from metarl.config import AgentConfig, TrainConfig
from metarl.episodes import Episodes
from metarl.policies import Params, make_policy, make_recurrent_policy
from metarl.registry import agent_entry
from metarl.sampling import Sampler
from metarl.tasks import Task, TaskFamily, family_of, task_features


class Agent(Protocol):
    """What the training loop, evaluation and users call on an agent.

    - ``train_step(tasks, iteration)``: one meta-iteration on `tasks`; its metrics (names in
      `metarl.logger`).
    - ``adaptation_curve(tasks, num_steps, inner_lrs, seed, inspect)``: mean return per task
      after each adaptation step, [steps, tasks] (MAML: 0..num_steps gradient steps with
      `inner_lrs`; RL2: each episode of one trial, the other two ignored). `inspect(step,
      params, episodes)` sees what each step sampled.
    - ``adapt(env, steps, seed)``: an `Actor` adapted to `env`'s task (MAML: `steps` inner
      steps on episodes played in `env`; RL2: `steps` episodes played, the hidden state kept).
    - ``state_dict()`` / ``load_state_dict(state)``: everything a checkpoint holds of it.
    """

    config: AgentConfig  # the keys of the run's config that the agent reads
    policy: torch.nn.Module
    sampler: Sampler

    def train_step(self, tasks: list[Task], iteration: int) -> dict[str, float]: ...

    def adaptation_curve(
        self,
        tasks: list[Task],
        num_steps: int | None = None,
        inner_lrs: list[float] | None = None,
        seed: int = 0,
        inspect: Callable[[int, Params, Episodes], None] | None = None,
    ) -> np.ndarray: ...

    def adapt(self, env: gym.Env, steps: int = 1, seed: int | None = None) -> Actor: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def build(config: TrainConfig) -> tuple[Agent, TaskFamily, Sampler]:
    """The agent of `config` with a freshly seeded policy, its task family and a sampler.

    The caller owns the sampler and must close it (it is a context manager).
    """
    entry = agent_entry(config.agent)
    family = family_of(config.env_id, config.env_kwargs)
    generator = seeding.torch_generator(config.seed, seeding.POLICY_INIT)
    if entry.recurrent:
        # the width of a task's features, from a throwaway task (no seeded stream is drawn)
        value_task_dim = (
            task_features(family.sample_tasks(1, np.random.default_rng(0))).shape[1]
            if config.rnn_privileged_value
            else 0
        )
        policy = make_recurrent_policy(
            family.observation_space,
            family.action_space,
            config.rnn_hidden_size,
            config.init_std,
            generator,
            reward_by_action=config.rnn_reward_by_action,
            value_task_dim=value_task_dim,
            state_action_inputs=config.rnn_state_action_inputs,
            observation_heads=config.rnn_observation_heads,
        )
    else:
        policy = make_policy(
            family.observation_space,
            family.action_space,
            config.hidden_sizes,
            config.activation,
            config.init_std,
            generator=generator,
        )
    sampler = Sampler(
        config.env_id,
        config.env_kwargs,
        policy.spec(),
        config.horizon,
        backend=config.sampler_backend,
        num_workers=config.num_workers,
        timeout_s=config.worker_timeout_s,
        rescale_actions=config.rescale_actions,
        address=config.ray_address,
        worker="trials" if entry.recurrent else "episodes",
    )
    return entry.make(AgentConfig(config, entry.reads), policy, sampler), family, sampler


def is_recurrent(config: TrainConfig | AgentConfig) -> bool:
    """Whether `config`'s agent samples whole trials with a GRU policy (RL2)."""
    return agent_entry(config.agent).recurrent
