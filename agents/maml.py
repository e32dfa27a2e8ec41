"""MAML with a policy-gradient inner loop and a composed outer step: TRPO (`TRPOOuterStep`,
agent ``maml_trpo``) or PPO (`PPOOuterStep`, agent ``maml_ppo``).

One meta-iteration (`MAML.train_step`), batched over the tasks of the meta-batch:

1. For each inner step k: sample ``episodes_per_task`` episodes per task with the task's
   current parameters theta_k, fit the linear baseline per task, and take one
   policy-gradient step: theta_{k+1} = theta_k - inner_lr * grad L_inner(theta_k).
2. Sample the post-adaptation ("validation") episodes with theta_K.
3. Outer step: TRPO on the mean over tasks of the importance-weighted surrogate of the
   validation episodes as a function of the meta-parameters theta_0 through the adaptation
   (second order unless ``first_order``), constrained by the mean KL from the policies that
   sampled them. Gradients and KL-Hessian products are chained through the adaptation's
   Jacobian with inner-loss Hessian-vector products (`MAML.outer_terms`), which equals
   differentiating through the unrolled adaptation (a test checks it) without third
   derivatives.

Parameters are stacked over tasks ([tasks, ...]); one batched forward evaluates every task
with its own parameters and one backward gives every task's inner gradient.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor
from torch.distributions import Normal

from metarl import baselines, seeding
from metarl.actors import MLPActor, collect_episodes
from metarl.config import TrainConfig
from metarl.episodes import Episodes
from metarl.optim import (
    TRPOResult,
    checked_step,
    flat_concat,
    hessian_vector_product,
    require_finite,
    trpo_step,
    unflatten,
)
from metarl.policies import GaussianMLPPolicy, Params, detach_params, stack_params
from metarl.returns import discounted_returns, gae, normalize_per_task
from metarl.sampling import Sampler
from metarl.tasks import Task


def masked_task_mean(values: Tensor, mask: Tensor) -> Tensor:
    """[tasks, episodes, time] -> [tasks]: mean over each task's valid steps."""
    return (values * mask).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)


@dataclass
class InnerStep:
    """One inner adaptation step of a meta-iteration, kept for the outer step.

    params: the parameters it started from, as leaves [tasks, ...]; gradients: the inner
    loss gradient there (with its graph unless first order); loss: mean inner loss.
    """

    episodes: Episodes
    advantages: Tensor
    params: Params
    gradients: list[Tensor]
    loss: float

    @classmethod
    def build(
        cls,
        agent: MAML,
        params: Params,
        episodes: Episodes,
        first_order: bool,
        advantages: Tensor | None = None,
    ) -> InnerStep:
        """The step from `params` [tasks, ...] on `episodes` (advantages computed unless given)."""
        advantages = agent.advantages(episodes) if advantages is None else advantages
        leaves = {name: value.detach().requires_grad_() for name, value in params.items()}
        loss = agent.inner_loss(leaves, episodes, advantages)
        gradients = torch.autograd.grad(loss.sum(), list(leaves.values()), create_graph=not first_order)
        return cls(episodes, advantages, leaves, list(gradients), float(loss.detach().mean()))

    def adapted(self, lr: float) -> Params:
        """theta - lr * gradient, detached."""
        return {
            name: (value - lr * grad).detach()
            for (name, value), grad in zip(self.params.items(), self.gradients)
        }

    def leading_tasks(self, agent: MAML, num_tasks: int) -> InnerStep:
        """This step restricted to the first `num_tasks` tasks, with a gradient graph of its own,
        so that a product through its Jacobian costs that share of the full one."""
        first_order = not any(g.requires_grad for g in self.gradients)
        params = {name: value[:num_tasks] for name, value in self.params.items()}
        episodes = self.episodes.leading_tasks(num_tasks)
        return InnerStep.build(agent, params, episodes, first_order, self.advantages[:num_tasks])

    def jacobian_product(self, vectors: list[Tensor], lr: float) -> list[Tensor]:
        """(I - lr H) v per task, H the inner-loss Hessian (symmetric, so also J^T v)."""
        if not any(g.requires_grad for g in self.gradients):  # first order: J = I
            return vectors
        products = hessian_vector_product(self.gradients, list(self.params.values()), vectors)
        return [v - lr * hv for v, hv in zip(vectors, products)]


class OuterStep(Protocol):
    """MAML's outer step on the meta-parameters, given the meta-iteration's inner steps and
    post-adaptation episodes. keeps_inner_graph: whether it needs the inner gradients' graphs
    (built in `train_step`) or recomputes the adaptation itself."""

    keeps_inner_graph: bool

    def step(
        self, agent: MAML, inner_steps: list[InnerStep], valid: Episodes, valid_advantages: Tensor
    ) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class MAML:
    """MAML with a policy-gradient inner loop and the outer step `outer`. `train_step` runs
    one meta-iteration; `adaptation_curve` evaluates; `adapt` adapts to one env's task."""

    def __init__(
        self, config: TrainConfig, policy: GaussianMLPPolicy, sampler: Sampler, outer: OuterStep
    ) -> None:
        self.config = config
        self.policy = policy
        self.sampler = sampler
        self.outer = outer

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

    def inner_update(
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
        sample_time = adapt_time = 0.0
        start = time.perf_counter()

        # 1. Sample and adapt with the meta-parameters fixed. Each inner step keeps the graph
        #    of its gradient (second order), for Hessian-vector products in the outer step.
        params = stack_params(detach_params(self.policy.params()), num_tasks)
        inner_steps: list[InnerStep] = []
        for step in range(cfg.num_inner_steps):
            tick = time.perf_counter()
            episodes = self._sample(tasks, params, (seeding.SAMPLING, iteration, step))
            sample_time += time.perf_counter() - tick
            tick = time.perf_counter()
            inner_step = InnerStep.build(
                self, params, episodes, cfg.first_order or not self.outer.keeps_inner_graph
            )
            inner_steps.append(inner_step)
            params = inner_step.adapted(cfg.inner_lr)
            for name, value in params.items():
                require_finite(f"the adapted parameter {name!r} after inner step {step + 1}", value)
            adapt_time += time.perf_counter() - tick

        # 2. Post-adaptation episodes.
        tick = time.perf_counter()
        valid = self._sample(tasks, params, (seeding.SAMPLING, iteration, cfg.num_inner_steps))
        sample_time += time.perf_counter() - tick

        # 3. Outer step on the meta-parameters (TRPO or PPO).
        tick = time.perf_counter()
        valid_advantages = self.advantages(valid)
        outer_metrics = self.outer.step(self, inner_steps, valid, valid_advantages)
        update_time = time.perf_counter() - tick

        env_steps = sum(step.episodes.env_steps for step in inner_steps) + valid.env_steps
        pre_adapt = inner_steps[0].episodes if inner_steps else valid
        return {
            "meta/return_pre_adapt": float(pre_adapt.episode_returns().mean()),
            "meta/return_post_adapt": float(valid.episode_returns().mean()),
            "losses/inner_loss": float(np.mean([s.loss for s in inner_steps])) if inner_steps else 0.0,
            **outer_metrics,
            "charts/iteration_env_steps": env_steps,
            "charts/env_steps_per_s": env_steps / max(sample_time, 1e-9),
            "time/sample_s": sample_time,
            "time/adapt_s": adapt_time,
            "time/update_s": update_time,
            "time/iteration_s": time.perf_counter() - start,
        }

    def sampling_params(self, inner_steps: list[InnerStep], num_tasks: int) -> Params:
        """The (detached) parameters that sampled the post-adaptation episodes: [tasks, ...]."""
        if inner_steps:
            return inner_steps[-1].adapted(self.config.inner_lr)
        return stack_params(detach_params(self.policy.params()), num_tasks)

    def curvature_episodes(self, valid: Episodes) -> int:
        """Episodes per task in the KL-Hessian products (`curvature_fraction` of them)."""
        fraction = self.config.curvature_fraction
        return max(1, int(fraction * valid.episodes_per_task + 0.5))

    def curvature_task_count(self, valid: Episodes) -> int:
        """Tasks in the exact KL-Hessian products (`curvature_tasks` of the meta-batch)."""
        return max(1, int(self.config.curvature_tasks * valid.num_tasks + 0.5))

    def approximates_curvature(self, valid: Episodes) -> bool:
        """Whether the CG's matrix is the F-only preconditioner (`curvature_fraction` < 1)."""
        return self.curvature_episodes(valid) < valid.episodes_per_task

    def calibrates_step(self, valid: Episodes) -> bool:
        """Whether TRPO calibrates the step's length on the true KL: whenever the CG's matrix is
        not the exact J^T F J on every task."""
        return self.approximates_curvature(valid) or self.curvature_task_count(valid) < valid.num_tasks

    def outer_terms(
        self, inner_steps: list[InnerStep], valid: Episodes, valid_advantages: Tensor
    ) -> tuple[float, Tensor, Callable[[Tensor], Tensor], Callable[[], tuple[float, float]]]:
        """What the TRPO step needs, at the current meta-parameters theta.

        Returns (surrogate loss, flat meta-gradient, v -> KL-Hessian v, evaluate() -> (loss,
        KL) at the parameters as they are when called). With phi the adapted parameters and
        J = d phi / d theta = prod_k (I - inner_lr H_k) (H_k: Hessian of inner loss k; J = I
        if first order), the meta-gradient is J^T grad_phi surrogate and the KL Hessian at
        the sampling point is J^T F J, F the KL Hessian in phi (exact there, since the KL
        gradient in phi vanishes). Only second derivatives are needed.
        """
        cfg = self.config
        num_tasks = valid.num_tasks
        meta_params = list(self.policy.parameters())
        adapted = {
            name: value.detach().requires_grad_()
            for name, value in self.sampling_params(inner_steps, num_tasks).items()
        }
        adapted_list = list(adapted.values())
        dist = self.policy.distribution(valid.observations, adapted)
        old_dist = Normal(dist.loc.detach(), dist.scale.detach(), validate_args=False)
        old_log_probs = self.policy.log_prob(old_dist, valid.actions)
        surrogate, kl = self._surrogate_and_kl(dist, old_dist, old_log_probs, valid, valid_advantages)
        surrogate_grad = torch.autograd.grad(surrogate, adapted_list, retain_graph=True)

        # The CG's matrix. By default (curvature_tasks < 1) the exact J_t^T F_t J_t averaged
        # over the meta-batch's first tasks: tasks are drawn at random and each keeps its own
        # inner episodes, so the estimate is unbiased over tasks; the graphs are rebuilt for
        # those tasks alone, so that a product costs that share. With curvature_tasks = 1, the
        # exact J^T F J on every task. With curvature_fraction < 1, a cheap preconditioner:
        # F alone (J taken as I) on the first episodes of each task (J_s^T F_s J_s on a few
        # episodes is biased upwards: J_s's noise enters twice; docs/results.md). Unless exact,
        # TRPO calibrates the step's length on the true KL through the exact adaptation on
        # every episode (see `trpo_step`).
        curvature_steps, curvature_adapted = inner_steps, adapted_list
        curvature_tasks = self.curvature_task_count(valid)
        if self.approximates_curvature(valid):
            curvature_steps = []
            kl = self._kl_at_sampling(valid.first(self.curvature_episodes(valid)), adapted)
        elif curvature_tasks < num_tasks:
            curvature_steps = [step.leading_tasks(self, curvature_tasks) for step in inner_steps]
            curvature_adapted = [value[:curvature_tasks].detach().requires_grad_() for value in adapted_list]
            kl = self._kl_at_sampling(
                valid.leading_tasks(curvature_tasks), dict(zip(adapted, curvature_adapted))
            )
        kl_grad = torch.autograd.grad(kl, curvature_adapted, create_graph=True)

        def through_adaptation(rows: list[Tensor], order: list[InnerStep]) -> list[Tensor]:
            for inner_step in order:
                rows = inner_step.jacobian_product(rows, cfg.inner_lr)
            return rows

        def to_meta(rows: list[Tensor], steps: list[InnerStep]) -> Tensor:
            # the parameters are shared by all tasks: the meta-gradient sums the task rows
            return flat_concat([row.sum(0) for row in through_adaptation(rows, steps[::-1])])

        def fisher_vector_product(vector: Tensor) -> Tensor:
            rows = [v.unsqueeze(0).expand(len(kl_grad[0]), *v.shape) for v in unflatten(vector, meta_params)]
            rows = through_adaptation(rows, curvature_steps)
            return to_meta(hessian_vector_product(list(kl_grad), curvature_adapted, rows), curvature_steps)

        def evaluate() -> tuple[float, float]:
            params = stack_params(detach_params(self.policy.params()), num_tasks)
            for inner_step in inner_steps:
                params = detach_params(
                    self.inner_update(params, inner_step.episodes, inner_step.advantages, cfg.inner_lr, False)
                )
            with torch.no_grad():
                new_dist = self.policy.distribution(valid.observations, params)
                loss, kl_now = self._surrogate_and_kl(
                    new_dist, old_dist, old_log_probs, valid, valid_advantages
                )
            return float(loss), float(kl_now)

        meta_gradient = to_meta(list(surrogate_grad), inner_steps)
        return float(surrogate.detach()), meta_gradient, fisher_vector_product, evaluate

    def _kl_at_sampling(self, episodes: Episodes, params: Params) -> Tensor:
        """Mean over tasks of KL(pi_params, detached || pi_params) on `episodes`: zero, with the
        KL Hessian at the sampling policy as its second derivative. params: [tasks, ...]."""
        dist = self.policy.distribution(episodes.observations, params)
        old_dist = Normal(dist.loc.detach(), dist.scale.detach(), validate_args=False)
        return masked_task_mean(self.policy.kl(old_dist, dist), episodes.mask).mean()

    def _surrogate_and_kl(
        self, dist: Normal, old_dist: Normal, old_log_probs: Tensor, valid: Episodes, advantages: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Importance-weighted surrogate loss and KL(old || new), each averaged over tasks."""
        ratio = torch.exp(self.policy.log_prob(dist, valid.actions) - old_log_probs)
        surrogate = -masked_task_mean(ratio * advantages, valid.mask).mean()
        kl = masked_task_mean(self.policy.kl(old_dist, dist), valid.mask).mean()
        return surrogate, kl

    # ---- evaluation -------------------------------------------------------------------
    def adaptation_curve(
        self,
        tasks: list[Task],
        num_steps: int | None = None,
        inner_lrs: list[float] | None = None,
        seed: int = 0,
        inspect: Callable[[int, Params, Episodes], None] | None = None,
    ) -> np.ndarray:
        """Mean episode return per task after 0..num_steps gradient steps: [num_steps + 1, tasks].

        Step k uses inner_lrs[k] (the last one repeats); defaults: the config's eval_steps and
        eval_inner_lrs. Episodes come from the EVAL_SAMPLING stream of `seed`.
        `inspect(step, params, episodes)`, if given, sees each step's parameters [tasks, ...]
        and the episodes sampled with them.
        """
        num_steps = self.config.eval_steps if num_steps is None else num_steps
        inner_lrs = inner_lrs or self.config.eval_inner_lrs
        params = stack_params(detach_params(self.policy.params()), len(tasks))
        curve = []
        for step in range(num_steps + 1):
            stream = seeding.seed_sequence(seed, seeding.EVAL_SAMPLING, step)
            episodes = self.sampler.sample(
                tasks, detach_params(params), self.config.episodes_per_task, stream
            )
            curve.append(episodes.task_returns().numpy())
            if inspect is not None:
                inspect(step, params, episodes)
            if step < num_steps:
                lr = inner_lrs[min(step, len(inner_lrs) - 1)]
                advantages = self.advantages(episodes)
                params = detach_params(self.inner_update(params, episodes, advantages, lr, False))
        return np.stack(curve)

    def adapt(
        self, env: gym.Env, steps: int = 1, seed: int | None = None, inner_lrs: list[float] | None = None
    ) -> MLPActor:
        """The policy after `steps` inner policy-gradient steps, each on `episodes_per_task`
        episodes (of at most `horizon` steps) played in `env` with its task as set; step k
        uses inner_lrs[k] (default: the config's eval_inner_lrs; the last one repeats). The env's
        resets and the policy's noise derive from `seed` (default: the run's)."""
        inner_lrs = inner_lrs or self.config.eval_inner_lrs
        params = stack_params(detach_params(self.policy.params()), 1)
        rng = seeding.generator(self.config.seed if seed is None else seed, seeding.ADAPT)

        def actor() -> MLPActor:  # acting with the parameters reached so far
            one_task = {name: value[0] for name, value in params.items()}
            return MLPActor(
                self.policy, one_task, env.action_space, self.config.rescale_actions, int(rng.integers(2**31))
            )

        for step in range(steps):
            episodes = collect_episodes(
                env, actor(), self.config.episodes_per_task, self.config.horizon, int(rng.integers(2**31))
            )
            lr = inner_lrs[min(step, len(inner_lrs) - 1)]
            params = detach_params(self.inner_update(params, episodes, self.advantages(episodes), lr, False))
        return actor()

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), **self.outer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.outer.load_state_dict(state)


class TRPOOuterStep:
    """One TRPO step on the meta-parameters: conjugate gradient on J^T F J, chained through
    the inner steps' gradient graphs (`MAML.outer_terms`), and a backtracking line search."""

    keeps_inner_graph = True

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    def step(
        self, agent: MAML, inner_steps: list[InnerStep], valid: Episodes, valid_advantages: Tensor
    ) -> dict[str, float]:
        surrogate, meta_gradient, fisher_vector_product, evaluate = agent.outer_terms(
            inner_steps, valid, valid_advantages
        )
        result = self.trpo(
            agent, meta_gradient, fisher_vector_product, evaluate, surrogate, agent.calibrates_step(valid)
        )
        return {
            "losses/surrogate_before": result.loss_before,
            "losses/surrogate_after": result.loss_after,
            "losses/kl": result.kl,
            "trpo/step_fraction": result.step_fraction,
            "trpo/backtracks": result.backtracks,
            "trpo/length_scale": result.length_scale,
        }

    def trpo(
        self,
        agent: MAML,
        meta_gradient: Tensor,
        fisher_vector_product: Callable[[Tensor], Tensor],
        evaluate: Callable[[], tuple[float, float]],
        loss_before: float,
        calibrate_length: bool,
    ) -> TRPOResult:
        """`trpo_step` on the meta-parameters with the config's trust region, CG and line search."""
        cfg = self.config
        return trpo_step(
            list(agent.policy.parameters()),
            meta_gradient,
            fisher_vector_product,
            evaluate,
            loss_before=loss_before,
            max_kl=cfg.max_kl,
            cg_iterations=cfg.cg_iterations,
            cg_damping=cfg.cg_damping,
            backtrack_ratio=cfg.line_search_backtrack_ratio,
            max_backtracks=cfg.line_search_max_backtracks,
            calibrate_length=calibrate_length,
        )

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class PPOOuterStep:
    """``ppo_epochs`` Adam steps on the clipped surrogate (the PPO outer step).

    Each epoch recomputes the adaptation differentiably from the current meta-parameters (on
    the same pre-adaptation episodes and advantages; second order unless ``first_order``),
    evaluates the post-adaptation episodes under the adapted policy, and descends
    -mean_tasks mean_steps min(r A, clip(r, 1 - eps, 1 + eps) A), r the probability ratio to
    the policy that sampled them. The Adam state is part of the checkpoint, so a resumed run
    equals an uninterrupted one.
    """

    keeps_inner_graph = False  # the adaptation is recomputed in each epoch

    def __init__(self, config: TrainConfig, policy: GaussianMLPPolicy) -> None:
        self.config = config
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=config.outer_lr)

    def adapted_from_meta(self, agent: MAML, inner_steps: list[InnerStep], num_tasks: int) -> Params:
        """The adapted parameters as a differentiable function of the meta-parameters."""
        cfg = self.config
        params = stack_params(agent.policy.params(), num_tasks)
        for step in inner_steps:
            params = agent.inner_update(
                params, step.episodes, step.advantages, cfg.inner_lr, not cfg.first_order
            )
        return params

    def ppo_loss(
        self, agent: MAML, params: Params, valid: Episodes, advantages: Tensor, old_log_probs: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(clipped surrogate loss, mean KL estimate, fraction of clipped steps), each a scalar."""
        eps = self.config.ppo_clip
        policy = agent.policy
        log_probs = policy.log_prob(policy.distribution(valid.observations, params), valid.actions)
        ratio = torch.exp(log_probs - old_log_probs)
        objective = torch.min(ratio * advantages, ratio.clamp(1 - eps, 1 + eps) * advantages)
        loss = -masked_task_mean(objective, valid.mask).mean()
        with torch.no_grad():
            kl = masked_task_mean(old_log_probs - log_probs, valid.mask).mean()
            clipped = masked_task_mean(((ratio - 1).abs() > eps).to(ratio.dtype), valid.mask).mean()
        return loss, kl, clipped

    def step(
        self, agent: MAML, inner_steps: list[InnerStep], valid: Episodes, valid_advantages: Tensor
    ) -> dict[str, float]:
        num_tasks = valid.num_tasks
        with torch.no_grad():
            old_dist = agent.policy.distribution(
                valid.observations, agent.sampling_params(inner_steps, num_tasks)
            )
            old_log_probs = agent.policy.log_prob(old_dist, valid.actions)
        losses = []
        for _ in range(self.config.ppo_epochs):
            params = self.adapted_from_meta(agent, inner_steps, num_tasks)
            loss, kl, clipped = self.ppo_loss(agent, params, valid, valid_advantages, old_log_probs)
            checked_step(self.optimizer, loss, "MAML-PPO outer loss")
            losses.append(float(loss.detach()))
        return {
            "losses/surrogate_before": losses[0],
            "losses/surrogate_last_epoch": losses[-1],
            "losses/kl": float(kl),
            "ppo/clip_fraction": float(clipped),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "optimizer" not in state:
            raise KeyError("a maml_ppo checkpoint must hold the Adam state ('optimizer')")
        self.optimizer.load_state_dict(state["optimizer"])


def maml_trpo(config: TrainConfig, policy: GaussianMLPPolicy, sampler: Sampler) -> MAML:
    """MAML-TRPO (agent ``maml_trpo``)."""
    return MAML(config, policy, sampler, TRPOOuterStep(config))


def maml_ppo(config: TrainConfig, policy: GaussianMLPPolicy, sampler: Sampler) -> MAML:
    """MAML-PPO (agent ``maml_ppo``)."""
    return MAML(config, policy, sampler, PPOOuterStep(config, policy))
