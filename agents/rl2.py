"""RL2 (Duan et al. 2016): a GRU policy that adapts inside its hidden state.

A *trial* is `episodes_per_trial` episodes back to back on one task; the hidden state runs
through the whole trial and starts at zero for the next one. The policy sees (observation,
previous action, previous reward, done flag). Returns and advantages run over the whole
trial, across episode boundaries: an episode's end is not a terminal state for the
trial's objective, only the trial's end is. One meta-iteration:

1. sample one trial for each of `meta_batch_size` tasks (`Sampler.sample_trials`);
2. lay each trial out in time order and run both GRUs over all trials in one call, for the
   sampling policy's log-probabilities and the values (with `rnn_privileged_value` the value
   GRU also reads each trial's task, a baseline the policy never sees);
3. GAE(discount, gae_lambda) over each trial, standardised over the batch;
4. the outer step, composed: PPO (`PPOTrialStep`, agent ``rl2_ppo``: epochs of Adam on
   minibatches of trials, clipped surrogate + value regression) or TRPO (`TRPOTrialStep`,
   agent ``rl2_trpo``: one trust-region step on the policy, then Adam epochs on the value).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from metarl import seeding
from metarl.actors import RecurrentActor, collect_episodes
from metarl.config import TrainConfig
from metarl.episodes import Episodes
from metarl.optim import (
    DivergenceWarning,
    autograd_fisher_vector_product,
    checked_step,
    flat_concat,
    trpo_step,
)
from metarl.policies import Params, RecurrentPolicy
from metarl.returns import gae
from metarl.sampling import Sampler
from metarl.tasks import Task, task_features

# A value loss this many times the mean squared target is reported as divergence: at
# initialisation (values near 0) the ratio is about 1, and a fit that learns brings it below 1.
DIVERGED_VALUE_LOSS_RATIO = 100.0


@dataclass
class Trials:
    """A batch of trials in time order: valid steps first, padding (mask 0) after.

    observations [trials, T, obs_dim], actions [trials, T, stored_action_dim], rewards,
    mask, episode_starts (1 on the first step of each episode) [trials, T]; T = episodes
    per trial * horizon. task_features [trials, F]: each trial's task for a privileged value
    (`metarl.tasks.task_features`), F = 0 when the value does not read it.
    """

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor
    episode_starts: Tensor
    task_features: Tensor

    @classmethod
    def from_episodes(cls, episodes: Episodes, with_tasks: bool = False) -> Trials:
        """Concatenate each trial's episodes [trials, K, H, ...] in time order (stable sort
        of the valid steps to the front); `with_tasks`: fill task_features."""
        num_trials, k, horizon = episodes.rewards.shape
        mask = episodes.mask.reshape(num_trials, k * horizon)
        order = torch.argsort(1.0 - mask, dim=1, stable=True)

        def gather(values: Tensor) -> Tensor:
            flat = values.reshape(num_trials, k * horizon, *values.shape[3:])
            index = order.reshape(*order.shape, *([1] * (flat.dim() - 2))).expand_as(flat)
            return torch.gather(flat, 1, index)

        starts = torch.zeros_like(episodes.rewards)
        starts[:, :, 0] = 1.0
        return cls(
            observations=gather(episodes.observations),
            actions=gather(episodes.actions),
            rewards=gather(episodes.rewards),
            mask=gather(episodes.mask),
            episode_starts=gather(starts) * gather(episodes.mask),
            task_features=torch.from_numpy(task_features(episodes.tasks))
            if with_tasks
            else torch.zeros(num_trials, 0),
        )

    def select(self, rows: Tensor) -> Trials:
        return Trials(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))


class TrialStep(Protocol):
    """RL2's outer step on a batch of trials (`RL2.train_step` prepares its inputs); its
    `optimizer`'s state is part of the checkpoint."""

    optimizer: torch.optim.Optimizer

    def step(
        self,
        agent: RL2,
        trials: Trials,
        inputs: Tensor,
        old_dist: Any,
        old_log_probs: Tensor,
        advantages: Tensor,
        targets: Tensor,
        iteration: int,
    ) -> dict[str, float]: ...


class RL2:
    """RL2 with the outer step `outer`. `train_step` runs one meta-iteration;
    `adaptation_curve` reports the return of each episode of a trial on held-out tasks;
    `adapt` plays episodes of one env's task and returns the policy with its hidden state."""

    def __init__(
        self, config: TrainConfig, policy: RecurrentPolicy, sampler: Sampler, outer: TrialStep
    ) -> None:
        self.config = config
        self.policy = policy
        self.sampler = sampler
        self.outer = outer

    # ---- pieces -------------------------------------------------------------------------
    def sample(self, tasks: list[Task], key: tuple[int, ...]) -> Episodes:
        stream = seeding.seed_sequence(self.config.seed, *key)
        return self.sampler.sample_trials(
            tasks, self.policy.state_dict(), self.config.episodes_per_trial, stream
        )

    def inputs(self, trials: Trials) -> Tensor:
        return self.policy.trial_inputs(
            trials.observations, trials.actions, trials.rewards, trials.episode_starts
        )

    def advantages_and_returns(self, trials: Trials, values: Tensor) -> tuple[Tensor, Tensor]:
        """GAE over whole trials [trials, T] and the value targets (advantage + value);
        the advantages standardised over all valid steps of the batch."""
        cfg = self.config
        advantages = gae(trials.rewards, values, trials.mask, cfg.discount, cfg.gae_lambda)
        targets = (advantages + values) * trials.mask
        valid = trials.mask.bool()
        mean, std = advantages[valid].mean(), advantages[valid].std()
        return (advantages - mean) / (std + 1e-8) * trials.mask, targets

    def entropy_weight(self, iteration: int) -> float:
        """The entropy bonus's weight at meta-iteration `iteration` (0-based): entropy_coef,
        falling linearly to entropy_coef_final at the last iteration when that is set."""
        cfg = self.config
        if cfg.entropy_coef_final is None:
            return cfg.entropy_coef
        progress = iteration / max(cfg.meta_iterations - 1, 1)
        return cfg.entropy_coef + (cfg.entropy_coef_final - cfg.entropy_coef) * min(progress, 1.0)

    @staticmethod
    def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
        return (values * mask).sum() / mask.sum().clamp(min=1)

    # ---- one meta-iteration ---------------------------------------------------------------
    def train_step(self, tasks: list[Task], iteration: int) -> dict[str, float]:
        start = time.perf_counter()
        episodes = self.sample(tasks, (seeding.SAMPLING, iteration))
        sample_time = time.perf_counter() - start

        tick = time.perf_counter()
        trials = Trials.from_episodes(episodes, with_tasks=self.policy.value_task_dim > 0)
        inputs = self.inputs(trials)
        with torch.no_grad():
            old_dist, old_values = self.policy.forward_trials(inputs, trials.task_features)
            old_log_probs = self.policy.log_prob(old_dist, trials.actions)
        advantages, targets = self.advantages_and_returns(trials, old_values)
        outer_metrics = self.outer.step(
            self, trials, inputs, old_dist, old_log_probs, advantages, targets, iteration
        )
        update_time = time.perf_counter() - tick
        self.warn_if_value_diverges(outer_metrics["losses/value"], trials, targets, iteration)

        episode_returns = episodes.episode_returns()  # [trials, K]
        return {
            "meta/return_pre_adapt": float(episode_returns[:, 0].mean()),  # the trial's first episode
            "meta/return_post_adapt": float(episode_returns[:, -1].mean()),  # its last
            "meta/trial_return": float(episode_returns.sum(1).mean()),
            **outer_metrics,
            "charts/iteration_env_steps": episodes.env_steps,
            "charts/env_steps_per_s": episodes.env_steps / max(sample_time, 1e-9),
            "time/sample_s": sample_time,
            "time/update_s": update_time,
            "time/iteration_s": time.perf_counter() - start,
        }

    def warn_if_value_diverges(
        self, value_loss: float, trials: Trials, targets: Tensor, iteration: int
    ) -> None:
        """A `DivergenceWarning` when the value loss (mean squared error) is more than
        `DIVERGED_VALUE_LOSS_RATIO` times the mean squared target: far worse than predicting
        zero, which a fit that still learns never is for long."""
        target_scale = float(self.masked_mean(targets**2, trials.mask))
        ratio = value_loss / max(target_scale, 1e-8)
        if ratio > DIVERGED_VALUE_LOSS_RATIO:
            warnings.warn(
                f"{self.config.agent}, iteration {iteration + 1}: the value loss {value_loss:.3g} is "
                f"{ratio:.3g} times the mean squared return target "
                f"({target_scale:.3g}): the value fit is diverging; lower outer_lr",
                DivergenceWarning,
                stacklevel=2,
            )

    def minibatches(self, num_trials: int, iteration: int, epoch: int) -> list[Tensor]:
        """A seeded shuffle of the trials, split into `ppo_minibatches` index sets."""
        generator = seeding.torch_generator(self.config.seed, seeding.MINIBATCHES, iteration, epoch)
        order = torch.randperm(num_trials, generator=generator)
        return list(torch.tensor_split(order, min(self.config.ppo_minibatches, num_trials)))

    # ---- evaluation -------------------------------------------------------------------
    def adaptation_curve(
        self,
        tasks: list[Task],
        num_steps: int | None = None,
        inner_lrs: list[float] | None = None,
        seed: int = 0,
        inspect: Callable[[int, Params, Episodes], None] | None = None,
    ) -> np.ndarray:
        """Mean return of each episode of one trial per task: [episodes_per_trial, tasks].

        (`num_steps` and `inner_lrs` belong to gradient-based agents and are ignored.)
        Trials come from the EVAL_SAMPLING stream of `seed`. `inspect(0, params, episodes)`,
        if given, sees the policy's parameters and the trials' episodes [tasks,
        episodes_per_trial, horizon, ...].
        """
        stream = seeding.seed_sequence(seed, seeding.EVAL_SAMPLING)
        params = self.policy.state_dict()
        episodes = self.sampler.sample_trials(tasks, params, self.config.episodes_per_trial, stream)
        if inspect is not None:
            inspect(0, params, episodes)
        return episodes.episode_returns().T.numpy()

    def adapt(self, env: gym.Env, steps: int = 1, seed: int | None = None) -> RecurrentActor:
        """The policy after playing `steps` episodes (of at most `horizon` steps) of `env`'s
        task, its hidden state carried on: act on in the same env to go on with the trial. The
        env's reset and the policy's noise derive from `seed` (default: the run's)."""
        rng = seeding.generator(self.config.seed if seed is None else seed, seeding.ADAPT)
        actor = RecurrentActor(
            self.policy, env.action_space, self.config.rescale_actions, int(rng.integers(2**31))
        )
        if steps:
            collect_episodes(env, actor, steps, self.config.horizon, int(rng.integers(2**31)))
        return actor

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.outer.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        if "optimizer" not in state:
            raise KeyError(f"an {self.config.agent} checkpoint must hold the optimizer state ('optimizer')")
        self.outer.optimizer.load_state_dict(state["optimizer"])


class PPOTrialStep:
    """RL2's PPO outer step: `ppo_epochs` passes of Adam over minibatches of trials on the
    clipped surrogate plus the value's squared error (agent ``rl2_ppo``)."""

    def __init__(self, config: TrainConfig, policy: RecurrentPolicy) -> None:
        self.config = config
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=config.outer_lr)

    def ppo_losses(
        self,
        agent: RL2,
        trials: Trials,
        inputs: Tensor,
        old_log_probs: Tensor,
        advantages: Tensor,
        targets: Tensor,
    ) -> dict[str, Tensor]:
        """Clipped surrogate, value loss and entropy of a minibatch of trials (scalars)."""
        eps = self.config.ppo_clip
        dist, values = agent.policy.forward_trials(inputs, trials.task_features)
        log_probs = agent.policy.log_prob(dist, trials.actions)
        ratio = torch.exp(log_probs - old_log_probs)
        objective = torch.min(ratio * advantages, ratio.clamp(1 - eps, 1 + eps) * advantages)
        with torch.no_grad():
            clipped = agent.masked_mean(((ratio - 1).abs() > eps).to(ratio.dtype), trials.mask)
            kl = agent.masked_mean(old_log_probs - log_probs, trials.mask)
        return {
            "surrogate": -agent.masked_mean(objective, trials.mask),
            "value": agent.masked_mean((values - targets) ** 2, trials.mask),
            "entropy": agent.masked_mean(agent.policy.entropy(dist), trials.mask),
            "clip_fraction": clipped,
            "kl": kl,
        }

    def step(
        self,
        agent: RL2,
        trials: Trials,
        inputs: Tensor,
        old_dist: Any,
        old_log_probs: Tensor,
        advantages: Tensor,
        targets: Tensor,
        iteration: int,
    ) -> dict[str, float]:
        """`ppo_epochs` passes of Adam over minibatches of trials."""
        cfg = self.config
        entropy_weight = agent.entropy_weight(iteration)
        history: list[dict[str, float]] = []

        def clip_gradients() -> None:
            # per network: the value's gradients (returns are not normalised) must not shrink
            # the policy's
            torch.nn.utils.clip_grad_norm_(agent.policy.policy_parameters(), cfg.max_grad_norm)
            torch.nn.utils.clip_grad_norm_(agent.policy.value_parameters(), cfg.max_grad_norm)

        for epoch in range(cfg.ppo_epochs):
            for rows in agent.minibatches(len(trials.rewards), iteration, epoch):
                losses = self.ppo_losses(
                    agent,
                    trials.select(rows),
                    inputs[rows],
                    old_log_probs[rows],
                    advantages[rows],
                    targets[rows],
                )
                loss = losses["surrogate"] + losses["value"] - entropy_weight * losses["entropy"]
                checked_step(self.optimizer, loss, "RL2-PPO loss", clip_gradients)
                history.append({name: float(value.detach()) for name, value in losses.items()})
        return {
            "losses/surrogate_before": history[0]["surrogate"],
            "losses/surrogate_last_epoch": history[-1]["surrogate"],
            "losses/value": history[-1]["value"],
            "losses/entropy": history[-1]["entropy"],
            "losses/kl": history[-1]["kl"],
            "ppo/clip_fraction": history[-1]["clip_fraction"],
        }


class TRPOTrialStep:
    """RL2's TRPO outer step (the paper's): one trust-region step on the policy, then
    `value_epochs` Adam passes over minibatches on the value GRU's squared error (agent
    ``rl2_trpo``)."""

    def __init__(self, config: TrainConfig, policy: RecurrentPolicy) -> None:
        self.config = config
        self.optimizer = torch.optim.Adam(policy.value_parameters(), lr=config.outer_lr)

    def step(
        self,
        agent: RL2,
        trials: Trials,
        inputs: Tensor,
        old_dist: Any,
        old_log_probs: Tensor,
        advantages: Tensor,
        targets: Tensor,
        iteration: int,
    ) -> dict[str, float]:
        cfg = self.config
        policy, mask = agent.policy, trials.mask
        params = policy.policy_parameters()
        entropy_weight = agent.entropy_weight(iteration)

        def surrogate_of(dist: Any) -> Tensor:
            """The loss TRPO lowers: minus the importance-weighted advantage, minus the
            weighted mean entropy (nats per step) when an entropy bonus is set."""
            ratio = torch.exp(policy.log_prob(dist, trials.actions) - old_log_probs)
            loss = -agent.masked_mean(ratio * advantages, mask)
            if entropy_weight > 0:
                loss = loss - entropy_weight * agent.masked_mean(policy.entropy(dist), mask)
            return loss

        surrogate = surrogate_of(policy.action_distribution(inputs))
        gradient = flat_concat(torch.autograd.grad(surrogate, params))
        # The CG's matrix: the KL Hessian on the first curvature_fraction of the trials (an
        # unbiased Fisher estimate at a fraction of the cost); the step's length is then
        # calibrated on the KL over all trials.
        curvature_trials = max(1, int(cfg.curvature_fraction * len(trials.rewards) + 0.5))
        subsampled = curvature_trials < len(trials.rewards)
        first = slice(0, curvature_trials)
        dist = policy.action_distribution(inputs[first])
        curvature_kl = agent.masked_mean(policy.kl(policy.detached(dist), dist), mask[first])

        def evaluate() -> tuple[float, float]:
            with torch.no_grad():
                dist_now = policy.action_distribution(inputs)
                kl_now = agent.masked_mean(policy.kl(old_dist, dist_now), mask)
                return float(surrogate_of(dist_now)), float(kl_now)

        result = trpo_step(
            params,
            gradient,
            autograd_fisher_vector_product(curvature_kl, params),
            evaluate,
            loss_before=float(surrogate.detach()),
            max_kl=cfg.max_kl,
            cg_iterations=cfg.cg_iterations,
            cg_damping=cfg.cg_damping,
            backtrack_ratio=cfg.line_search_backtrack_ratio,
            max_backtracks=cfg.line_search_max_backtracks,
            calibrate_length=subsampled,
        )
        with torch.no_grad():  # of the policy that sampled the batch: no extra forward pass
            entropy = agent.masked_mean(policy.entropy(old_dist), mask)
        value_losses = []
        for epoch in range(cfg.value_epochs):
            for rows in agent.minibatches(len(trials.rewards), iteration, epoch):
                values = policy.values(inputs[rows], trials.task_features[rows])
                loss = agent.masked_mean((values - targets[rows]) ** 2, mask[rows])
                checked_step(self.optimizer, loss, "RL2-TRPO value loss")
                value_losses.append(float(loss.detach()))
        return {
            "losses/surrogate_before": result.loss_before,
            "losses/surrogate_after": result.loss_after,
            "losses/kl": result.kl,
            "losses/value": value_losses[-1] if value_losses else 0.0,
            "losses/entropy": float(entropy),
            "losses/entropy_weight": entropy_weight,
            "trpo/step_fraction": result.step_fraction,
            "trpo/backtracks": result.backtracks,
        }


def rl2_ppo(config: TrainConfig, policy: RecurrentPolicy, sampler: Sampler) -> RL2:
    """RL2-PPO (agent ``rl2_ppo``)."""
    return RL2(config, policy, sampler, PPOTrialStep(config, policy))


def rl2_trpo(config: TrainConfig, policy: RecurrentPolicy, sampler: Sampler) -> RL2:
    """RL2-TRPO (agent ``rl2_trpo``)."""
    return RL2(config, policy, sampler, TRPOTrialStep(config, policy))
