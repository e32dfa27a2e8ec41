"""Meta-RL agents. `AGENTS` maps the config's ``agent`` name to its class."""

from __future__ import annotations

import numpy as np

from agents.maml import MAMLPPO, MAMLTRPO
from agents.rl2 import RL2PPO, RL2TRPO
from metarl import seeding
from metarl.config import TrainConfig
from metarl.policies import make_policy, make_recurrent_policy
from metarl.sampling import Sampler
from metarl.tasks import TaskFamily, family_of, task_features

AGENTS = {"maml_trpo": MAMLTRPO, "maml_ppo": MAMLPPO, "rl2_ppo": RL2PPO, "rl2_trpo": RL2TRPO}
RECURRENT_AGENTS = ("rl2_ppo", "rl2_trpo")  # sample whole trials with a GRU policy


def build(config: TrainConfig) -> tuple[MAMLTRPO | RL2PPO, TaskFamily, Sampler]:
    """The agent of `config` with a freshly seeded policy, its task family and a sampler.

    The caller owns the sampler and must close it (it is a context manager).
    """
    family = family_of(config.env_id, config.env_kwargs)
    generator = seeding.torch_generator(config.seed, seeding.POLICY_INIT)
    recurrent = config.agent in RECURRENT_AGENTS
    if recurrent:
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
        rescale_actions=config.rescale_actions,
        address=config.ray_address,
        worker="trials" if recurrent else "episodes",
    )
    return AGENTS[config.agent](config, policy, sampler), family, sampler


__all__ = ["AGENTS", "MAMLPPO", "MAMLTRPO", "RECURRENT_AGENTS", "RL2PPO", "RL2TRPO", "build"]
