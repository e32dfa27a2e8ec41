"""Cost and step quality of the MAML-TRPO outer step's curvature options, on one meta-batch.

    python research/curvature_quality.py runs/<run>/checkpoints/iteration_000100.pt
    python research/curvature_quality.py <checkpoint> --tasks 0.5 0.25 0.1 --episodes 0.1

Samples the meta-batch the run would train on next (its own tasks and seeds), keeps its
inner steps and post-adaptation episodes, and runs the same TRPO step (the run's CG
iterations, damping, max KL and line search) with each matrix in the conjugate gradient:

- ``exact``: J^T F J through the adaptation on every task and episode (the default step);
- ``tasks p``: the exact J_t^T F_t J_t on a share p of the tasks (``curvature_tasks=p``), the
  step length calibrated on the true KL (and ``tasks p, uncalibrated``: without that);
- ``F-only q``: F alone (J taken as I) on a share q of each task's episodes, the step
  length calibrated on the true KL (``curvature_fraction=q``, the locomotion presets' old
  step);
- ``authors' secant``: what cbfinn/maml_rl's ``FiniteDifferenceHvp`` computes,
  (grad KL(theta + eps v) - grad KL(theta - eps v)) / (2 eps) with eps = base_eps / |theta|
  in float32, the KL's gradient taken through the exact adaptation on every episode. Their
  ``ConjugateGradientOptimizer`` builds ``FiniteDifferenceHvp(num_slices)``, so base_eps is
  num_slices = 1 (the class default, 1e-8, is never used there); ``--base-eps`` changes it.

For each: milliseconds per matrix-vector product, seconds for the whole step (terms, CG and
line search), the surrogate gain (loss before - after) and its ratio to the exact step's,
the cosine of the accepted step with the exact one, the KL reached and the backtracks.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from metarl.agents.maml import MAML, InnerStep, TRPOOuterStep, masked_task_mean
from torch import Tensor
from torch.distributions import Normal

import metarl  # noqa: F401  (registers the metarl/ ids)
from metarl.agent import build
from metarl.checkpoint import CheckpointError, load_run
from metarl.config import ConfigError
from metarl.episodes import Episodes
from metarl.optim import flat_concat
from metarl.policies import stack_params
from metarl.tasks import sample_train_tasks

PRODUCT_REPEATS = 3  # products timed per option


def authors_secant_product(
    agent: MAML, inner_steps: list[InnerStep], valid: Episodes, base_eps: float
) -> Callable[[Tensor], Tensor]:
    """v -> the authors' symmetric secant of the post-adaptation KL's meta-gradient along v.

    The KL is from the policies that sampled `valid` to the policies adapted (second order,
    as in the run) from the perturbed meta-parameters, averaged over tasks; theta and the
    perturbation are float32 as in their code. Leaves the meta-parameters as it found them.
    """
    cfg = agent.config
    meta_params = list(agent.policy.parameters())
    theta = flat_concat([p.detach() for p in meta_params]).clone()
    eps = float(np.float32(base_eps / (float(theta.norm()) + 1e-8)))
    with torch.no_grad():
        sampling = agent.sampling_params(inner_steps, valid.num_tasks)
        old_dist = agent.policy.distribution(valid.observations, sampling)
        old_dist = Normal(old_dist.loc, old_dist.scale, validate_args=False)

    def set_meta(flat: Tensor) -> None:
        with torch.no_grad():
            offset = 0
            for param in meta_params:
                param.copy_(flat[offset : offset + param.numel()].view_as(param))
                offset += param.numel()

    def kl_gradient(at: Tensor) -> Tensor:
        set_meta(at)
        params = stack_params(agent.policy.params(), valid.num_tasks)
        for step in inner_steps:
            params = agent.inner_update(
                params, step.episodes, step.advantages, cfg.inner_lr, not cfg.first_order
            )
        dist = agent.policy.distribution(valid.observations, params)
        kl = masked_task_mean(agent.policy.kl(old_dist, dist), valid.mask).mean()
        return flat_concat(list(torch.autograd.grad(kl, meta_params)))

    def product(vector: Tensor) -> Tensor:
        try:
            plus = kl_gradient(theta + eps * vector)
            minus = kl_gradient(theta - eps * vector)
        finally:
            set_meta(theta)
        return (plus - minus) / (2 * eps)

    return product


def one_step(
    agent: MAML,
    inner_steps: list[InnerStep],
    valid: Episodes,
    advantages: Tensor,
    curvature: dict[str, float],
    base_eps: float | None = None,
    calibrate: bool | None = None,
) -> dict:
    """One TRPO step with the curvature option `curvature` ({config key: value}; with
    `base_eps`, the authors' secant instead); `calibrate` overrides whether the step's length
    is calibrated on the true KL (default: as the agent would); the meta-parameters are
    restored afterwards.

    Returns {product_ms, step_s, gain, kl, backtracks, step (flat accepted step)}.
    """
    cfg = agent.config
    # fresh graphs on copies: a step writes the meta-parameters in place, which the stacked
    # parameters of the captured steps may share storage with
    inner_steps = [
        InnerStep.build(
            agent,
            {k: v.detach().clone() for k, v in step.params.items()},
            step.episodes,
            cfg.first_order,
            step.advantages,
        )
        for step in inner_steps
    ]
    for key, value in {"curvature_fraction": 1.0, "curvature_tasks": 1.0, **curvature}.items():
        setattr(cfg, key, value)
    meta_params = list(agent.policy.parameters())
    before = flat_concat([p.detach() for p in meta_params]).clone()
    start = time.perf_counter()
    surrogate, gradient, product, evaluate = agent.outer_terms(inner_steps, valid, advantages)
    if base_eps is not None:
        product = authors_secant_product(agent, inner_steps, valid, base_eps)
    terms_s = time.perf_counter() - start
    tick = time.perf_counter()
    for _ in range(PRODUCT_REPEATS):
        product(gradient)
    product_ms = 1000 * (time.perf_counter() - tick) / PRODUCT_REPEATS
    tick = time.perf_counter()
    calibrate = agent.calibrates_step(valid) if calibrate is None else calibrate
    result = TRPOOuterStep(cfg).trpo(agent, gradient, product, evaluate, surrogate, calibrate)
    step_s = terms_s + time.perf_counter() - tick
    step = flat_concat([p.detach() for p in meta_params]) - before
    with torch.no_grad():  # restore theta
        offset = 0
        for param in meta_params:
            param.copy_(before[offset : offset + param.numel()].view_as(param))
            offset += param.numel()
    return {
        "product_ms": product_ms,
        "step_s": step_s,
        "gain": result.loss_before - result.loss_after,
        "kl": result.kl,
        "backtracks": result.backtracks if result.step_fraction > 0 else None,
        "step": step,
    }


def measure(
    checkpoint: Path,
    task_shares: list[float],
    episode_shares: list[float],
    base_eps: float | None,
    uncalibrated_task_shares: list[float] = (),
) -> dict:
    """Every option's `one_step` on the meta-batch the run would train on next."""
    state, config = load_run(checkpoint)
    config.curvature_fraction = config.curvature_tasks = 1.0
    agent, family, sampler = build(config)
    agent.load_state_dict(state["agent"])
    iteration = state["iteration"]
    captured: dict = {}

    class Capture:  # stands in for the outer step: keeps the batch, changes nothing
        keeps_inner_graph = True

        def step(self, _agent, inner_steps, valid, advantages) -> dict[str, float]:
            captured.update(inner_steps=inner_steps, valid=valid, advantages=advantages)
            return {}

    agent.outer = Capture()
    tasks = sample_train_tasks(family, config.meta_batch_size, config.seed, iteration)
    with sampler:
        agent.train_step(tasks, iteration)
    batch = (agent, captured["inner_steps"], captured["valid"], captured["advantages"])
    options: dict[str, dict] = {"exact": one_step(*batch, {})}
    for share in task_shares:
        options[f"tasks {share:g}"] = one_step(*batch, {"curvature_tasks": share})
    for share in uncalibrated_task_shares:
        options[f"tasks {share:g}, uncalibrated"] = one_step(
            *batch, {"curvature_tasks": share}, calibrate=False
        )
    for share in episode_shares:
        options[f"F-only {share:g}"] = one_step(*batch, {"curvature_fraction": share})
    if base_eps is not None:
        options[f"authors' secant (base_eps {base_eps:g})"] = one_step(*batch, {}, base_eps=base_eps)
    exact = options["exact"]
    for row in options.values():
        row["gain_ratio"] = row["gain"] / exact["gain"] if exact["gain"] > 0 else float("nan")
        norms = float(row["step"].norm() * exact["step"].norm())
        row["cosine"] = float(row["step"] @ exact["step"]) / norms if norms > 0 else float("nan")
    return {"env": f"{config.env_id} {config.env_kwargs}", "iteration": iteration, "options": options}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a MAML-TRPO run directory or checkpoint file")
    shares = {"type": float, "nargs": "*"}
    parser.add_argument("--tasks", **shares, default=[0.5, 0.25, 0.1], help="curvature_tasks shares")
    parser.add_argument("--episodes", **shares, default=[0.1], help="curvature_fraction shares")
    parser.add_argument(
        "--uncalibrated-tasks",
        **shares,
        default=[0.5],
        help="curvature_tasks shares, the length not calibrated",
    )
    parser.add_argument("--base-eps", type=float, default=1.0, help="the authors' base_eps (theirs: 1)")
    parser.add_argument("--no-secant", action="store_true", help="leave out the authors' secant")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(True)
    try:
        result = measure(
            Path(args.checkpoint),
            args.tasks,
            args.episodes,
            None if args.no_secant else args.base_eps,
            args.uncalibrated_tasks,
        )
    except (ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{result['env']}, meta-batch of iteration {result['iteration'] + 1}")
    print(
        "| curvature | ms per product | step s | surrogate gain | gain / exact | cosine to exact "
        "| KL | backtracks |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, row in result["options"].items():
        backtracks = "rejected" if row["backtracks"] is None else row["backtracks"]
        print(
            f"| {name} | {row['product_ms']:.1f} | {row['step_s']:.2f} | {row['gain']:.5f} | "
            f"{row['gain_ratio']:.2f} | {row['cosine']:.3f} | {row['kl']:.4f} | {backtracks} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
