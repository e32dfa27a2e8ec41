"""MAML with a policy-gradient inner loop and a TRPO outer step (Finn et al. 2017).

One meta-iteration (`MAMLTRPO.train_step`), batched over the tasks of the meta-batch:

1. For each inner step k: sample ``episodes_per_task`` episodes per task with the task's
   current parameters theta_k, fit the linear baseline per task, and take one
   policy-gradient step: theta_{k+1} = theta_k - inner_lr * grad L_inner(theta_k).
2. Sample the post-adaptation ("validation") episodes with theta_K.
3. Outer step: TRPO on the mean over tasks of the importance-weighted surrogate of the
   validation episodes, where theta_K is recomputed as a differentiable function of the
   meta-parameters theta_0 (second order unless ``first_order``), constrained by the mean
   KL from the policies that sampled them.

Parameters are stacked over tasks ([tasks, ...]); one batched forward evaluates every task
with its own parameters and one backward gives every task's inner gradient.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from metarl import baselines, seeding
from metarl.config import TrainConfig
from metarl.episodes import Episodes
from metarl.optim import trpo_step
from metarl.policies import GaussianMLPPolicy, Params, detach_params, stack_params
from metarl.returns import discounted_returns, gae, normalize_per_task
from metarl.sampling import Sampler
from metarl.tasks import Task


def masked_task_mean(values: Tensor, mask: Tensor) -> Tensor:
    """[tasks, episodes, time] -> [tasks]: mean over each task's valid steps."""
    return (values * mask).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)


class MAMLTRPO:
    """MAML-TRPO. `train_step` runs one meta-iteration; `adaptation_curve` evaluates."""

    def __init__(self, config: TrainConfig, policy: GaussianMLPPolicy, sampler: Sampler) -> None:
        self.config = config
        self.policy = policy
        self.sampler = sampler

    # ---- pieces -------------------------------------------------------------------------
    def advantages(self, episodes: Episodes) -> Tensor:
        """Per-task normalised GAE advantages with a per-task linear baseline: [tasks, episodes, time]."""
        cfg = self.config
        returns = discounted_returns(episodes.rewards, episodes.mask, cfg.discount)
        values = baselines.fit_predict(episodes.observations, episodes.mask, returns)
        advantages = gae(episodes.rewards, values, episodes.mask, cfg.discount, cfg.gae_lambda)
        return normalize_per_task(advantages, episodes.mask)

    def inner_loss(self, params: Params, episodes: Episodes, advantages: Tensor) -> Tensor:
        """REINFORCE loss per task [tasks]: -mean over valid steps of log pi(a|s) * A."""
        dist = self.policy.distribution(episodes.observations, params)
        log_probs = self.policy.log_prob(dist, episodes.actions)
        return -masked_task_mean(log_probs * advantages, episodes.mask)

    def adapt(
        self, params: Params, episodes: Episodes, advantages: Tensor, lr: float, create_graph: bool
    ) -> Params:
        """One inner policy-gradient step for every task at once.

        params: stacked [tasks, ...]. Summing the per-task losses and differentiating with
        respect to the stacked tensors gives each task its own gradient. create_graph keeps
        the graph of the gradient itself (second-order MAML).
        """
        if not any(p.requires_grad for p in params.values()):
            params = {k: v.detach().requires_grad_() for k, v in params.items()}
        with torch.enable_grad():
            loss = self.inner_loss(params, episodes, advantages).sum()
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
        return {name: value - lr * grad for (name, value), grad in zip(params.items(), grads)}

    def _sample(self, tasks: list[Task], params: Params, key: tuple[int, ...]) -> Episodes:
        stream = seeding.seed_sequence(self.config.seed, *key)
        return self.sampler.sample(tasks, detach_params(params), self.config.episodes_per_task, stream)

    # ---- one meta-iteration ---------------------------------------------------------------
    def train_step(self, tasks: list[Task], iteration: int) -> dict[str, float]:
        cfg = self.config
        num_tasks = len(tasks)
        sample_time = 0.0
        start = time.perf_counter()

        # 1-2. Sample, adapt, sample again, with the meta-parameters fixed.
        params = stack_params(detach_params(self.policy.params()), num_tasks)
        train_episodes: list[Episodes] = []
        train_advantages: list[Tensor] = []
        inner_losses = []
        for step in range(cfg.num_inner_steps):
            tick = time.perf_counter()
            episodes = self._sample(tasks, params, (seeding.SAMPLING, iteration, step))
            sample_time += time.perf_counter() - tick
            advantages = self.advantages(episodes)
            train_episodes.append(episodes)
            train_advantages.append(advantages)
            inner_losses.append(float(self.inner_loss(params, episodes, advantages).mean()))
            params = detach_params(self.adapt(params, episodes, advantages, cfg.inner_lr, False))
        tick = time.perf_counter()
        valid = self._sample(tasks, params, (seeding.SAMPLING, iteration, cfg.num_inner_steps))
        sample_time += time.perf_counter() - tick
        valid_advantages = self.advantages(valid)
        with torch.no_grad():
            old_dist = self.policy.distribution(valid.observations, params)
            old_log_probs = self.policy.log_prob(old_dist, valid.actions)

        # 3. Outer TRPO step on the meta-parameters.
        def surrogate_and_kl(differentiable: bool) -> tuple[Tensor, Tensor]:
            adapted = stack_params(self.policy.params(), num_tasks)
            for episodes, advantages in zip(train_episodes, train_advantages):
                create_graph = differentiable and not cfg.first_order
                adapted = self.adapt(adapted, episodes, advantages, cfg.inner_lr, create_graph)
            with torch.set_grad_enabled(differentiable):
                dist = self.policy.distribution(valid.observations, adapted)
                ratio = torch.exp(self.policy.log_prob(dist, valid.actions) - old_log_probs)
                surrogate = -masked_task_mean(ratio * valid_advantages, valid.mask).mean()
                kl = masked_task_mean(self.policy.kl(old_dist, dist), valid.mask).mean()
            return surrogate, kl

        tick = time.perf_counter()
        result = trpo_step(
            list(self.policy.parameters()),
            surrogate_and_kl,
            max_kl=cfg.max_kl,
            cg_iterations=cfg.cg_iterations,
            cg_damping=cfg.cg_damping,
            backtrack_ratio=cfg.line_search_backtrack_ratio,
            max_backtracks=cfg.line_search_max_backtracks,
        )
        update_time = time.perf_counter() - tick

        env_steps = sum(e.env_steps for e in train_episodes) + valid.env_steps
        iteration_time = time.perf_counter() - start
        pre_adapt = train_episodes[0] if train_episodes else valid
        return {
            "meta/return_pre_adapt": float(pre_adapt.episode_returns().mean()),
            "meta/return_post_adapt": float(valid.episode_returns().mean()),
            "losses/inner_loss": float(np.mean(inner_losses)) if inner_losses else 0.0,
            "losses/surrogate_before": result.loss_before,
            "losses/surrogate_after": result.loss_after,
            "losses/kl": result.kl,
            "trpo/step_fraction": result.step_fraction,
            "trpo/backtracks": result.backtracks,
            "charts/iteration_env_steps": env_steps,
            "charts/env_steps_per_s": env_steps / max(sample_time, 1e-9),
            "time/sample_s": sample_time,
            "time/update_s": update_time,
            "time/iteration_s": iteration_time,
        }

    # ---- evaluation -------------------------------------------------------------------
    def adaptation_curve(
        self, tasks: list[Task], num_steps: int, inner_lrs: list[float], seed: int
    ) -> np.ndarray:
        """Mean episode return per task after 0..num_steps gradient steps: [num_steps + 1, tasks].

        Step k uses inner_lrs[k] (the last one repeats). Episodes come from the EVAL_SAMPLING
        stream of `seed`.
        """
        params = stack_params(detach_params(self.policy.params()), len(tasks))
        curve = []
        for step in range(num_steps + 1):
            stream = seeding.seed_sequence(seed, seeding.EVAL_SAMPLING, step)
            episodes = self.sampler.sample(
                tasks, detach_params(params), self.config.episodes_per_task, stream
            )
            curve.append(episodes.task_returns().numpy())
            if step < num_steps:
                lr = inner_lrs[min(step, len(inner_lrs) - 1)]
                advantages = self.advantages(episodes)
                params = detach_params(self.adapt(params, episodes, advantages, lr, False))
        return np.stack(curve)

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
