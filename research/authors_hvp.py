"""What the MAML authors' TRPO step did, emulated on one paper-sized meta-batch of a run.

    python research/authors_hvp.py \
        runs/reproduce/frameskip1_maml_trpo_halfcheetah_dir/checkpoints/iteration_000100.pt

The authors' code (cbfinn/maml_rl, ``sandbox/rocky/tf/optimizers/conjugate_gradient_optimizer.py``)
multiplies by the KL Hessian with ``FiniteDifferenceHvp``: (grad KL(theta + eps v) - grad
KL(theta - eps v)) / (2 eps), eps = 1e-8 / |theta|, with theta, v and the sum in float32.
Most of theta + eps v rounds back to theta, so the product sees only the rounded
perturbation q(v) = (fl(theta + eps v) - fl(theta - eps v)) / (2 eps). This script builds
that operator, H q(v) + 1e-5 v with H our exact J^T F J, runs their CG and line search
(10 iterations; trial lengths 0.8^k, 15 of them; the step rejected if none fits) and sets
the result beside the natural-gradient step and the plain-gradient step on the same batch:
cosines, the step's parameter norm, the KL reached and the surrogate gained.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

import metarl.agents.maml as maml_module
import numpy as np
import torch

import metarl  # noqa: F401  (registers the metarl/ ids)
from metarl.agent import build
from metarl.checkpoint import CheckpointError, load_run
from metarl.config import ConfigError
from metarl.optim import TRPOResult, conjugate_gradient, flat_concat, unflatten
from metarl.tasks import sample_train_tasks

ROOT = Path(__file__).resolve().parents[1]

REG_COEFF = 1e-5  # rllab ConjugateGradientOptimizer's reg_coeff
BASE_EPS = 1e-8  # FiniteDifferenceHvp's base_eps


def rounded_perturbation(theta: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """q(v): the part of eps v that survives float32 rounding, divided by eps. Shapes [P]."""
    eps = np.float32(BASE_EPS / (float(theta.double().norm()) + 1e-8))
    shift = torch.tensor(eps, dtype=torch.float32) * vector.float()
    plus, minus = theta + shift, theta - shift  # float32 sums, as in set_param_values
    return ((plus.double() - minus.double()) / (2 * float(eps))).to(vector.dtype)


def analyse(
    params: list[torch.Tensor],
    loss_gradient: torch.Tensor,
    fisher_vector_product: Callable[[torch.Tensor], torch.Tensor],
    evaluate: Callable[[], tuple[float, float]],
    loss_before: float,
    max_kl: float,
) -> dict:
    """The three steps from one batch's TRPO terms (see `metarl.agents.maml.MAML.outer_terms`).

    Returns {theta_norm, survived (share of the gradient's coordinates that survive the
    rounding), q_norm_ratio (|q(g)| / |g|), cos_authors_natural, steps: {name: {cos_gradient,
    full_norm, accepted, backtracks, norm, kl, gain}}}; the parameters are left as they were.
    """
    theta = flat_concat([p.detach() for p in params]).float()
    old = [p.detach().clone() for p in params]
    products = {
        "authors (FD, float32)": lambda v: (
            fisher_vector_product(rounded_perturbation(theta, v)) + REG_COEFF * v
        ),
        "natural (exact J^T F J)": lambda v: fisher_vector_product(v) + REG_COEFF * v,
        "plain gradient": lambda v: REG_COEFF * v,
    }
    # every product first: the line searches below move the parameters in place, which the
    # adaptation's saved graph (and so the product) depends on
    full_steps = {}
    for name, product in products.items():
        direction = conjugate_gradient(product, -loss_gradient, 10)
        length = math.sqrt(2 * max_kl / max(float(direction @ product(direction)), 1e-30))
        full_steps[name] = length * direction
    steps = {}
    for name, full_step in full_steps.items():
        row = {
            "cos_gradient": float(-full_step @ loss_gradient / (full_step.norm() * loss_gradient.norm())),
            "full_norm": float(full_step.norm()),
            "accepted": False,
        }
        for backtrack in range(15):
            fraction = 0.8**backtrack
            with torch.no_grad():
                for param, start, part in zip(params, old, unflatten(fraction * full_step, params)):
                    param.copy_(start + part)
            loss, kl = evaluate()
            if loss < loss_before and kl <= max_kl:
                row.update(accepted=True, backtracks=backtrack, kl=kl, gain=loss_before - loss)
                row["norm"] = fraction * row["full_norm"]
                break
        with torch.no_grad():
            for param, start in zip(params, old):
                param.copy_(start)
        steps[name] = row
    authors, natural = full_steps["authors (FD, float32)"], full_steps["natural (exact J^T F J)"]
    q = rounded_perturbation(theta, loss_gradient)
    return {
        "theta_norm": float(theta.norm()),
        "survived": float((q != 0).double().mean()),
        "q_norm_ratio": float(q.norm() / loss_gradient.norm()),
        "cos_authors_natural": float(authors @ natural / (authors.norm() * natural.norm())),
        "steps": steps,
    }


def measure(checkpoint: Path, max_kl: float) -> dict:
    """`analyse` on the meta-batch the run would train on next (its own tasks and seeds)."""
    state, config = load_run(checkpoint)
    config.curvature_fraction = 1.0  # the exact J^T F J
    agent, family, sampler = build(config)
    agent.load_state_dict(state["agent"])
    iteration = state["iteration"]
    found: dict = {}

    def capture(params, loss_gradient, fisher_vector_product, evaluate, loss_before, **_) -> TRPOResult:
        found.update(analyse(params, loss_gradient, fisher_vector_product, evaluate, loss_before, max_kl))
        return TRPOResult(loss_before, loss_before, 0.0, 0.0, 0)

    tasks = sample_train_tasks(family, config.meta_batch_size, config.seed, iteration)
    original = maml_module.trpo_step
    maml_module.trpo_step = capture
    try:
        with sampler:
            agent.train_step(tasks, iteration)
    finally:
        maml_module.trpo_step = original
    return {"env": f"{config.env_id} {config.env_kwargs}", "iteration": iteration, **found}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a MAML-TRPO run directory or checkpoint file")
    parser.add_argument("--max-kl", type=float, default=0.02, help="the paper's Dir run used 0.02")
    args = parser.parse_args(argv)
    try:
        result = measure(Path(args.checkpoint), args.max_kl)
    except (ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{result['env']}, iteration {result['iteration']}, max KL {args.max_kl}")
    print(
        f"|theta| = {result['theta_norm']:.2f}: {result['survived']:.2%} of the gradient's coordinates "
        f"survive float32 rounding, |q(g)| / |g| = {result['q_norm_ratio']:.3f}"
    )
    print("| step | cos(step, -gradient) | first trial norm | backtracks | norm | KL | surrogate gain |")
    print("|---|---|---|---|---|---|---|")
    for name, row in result["steps"].items():
        head = f"| {name} | {row['cos_gradient']:.3f} | {row['full_norm']:.3f} |"
        if row["accepted"]:
            print(f"{head} {row['backtracks']} | {row['norm']:.4f} | {row['kl']:.4f} | {row['gain']:.5f} |")
        else:
            print(f"{head} rejected (15) | | | 0 |")
    print(f"cos(authors' direction, natural direction) = {result['cos_authors_natural']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
