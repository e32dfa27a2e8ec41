"""Second-order optimisation pieces: conjugate gradient and the TRPO step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


def flat_concat(tensors: list[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor], b: Tensor, iterations: int = 10, residual_tol: float = 1e-10
) -> Tensor:
    """Approximately solve A x = b for symmetric positive-definite A given x -> A x."""
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_sq = residual @ residual
    for _ in range(iterations):
        a_direction = matvec(direction)
        alpha = residual_sq / (direction @ a_direction)
        x += alpha * direction
        residual -= alpha * a_direction
        new_residual_sq = residual @ residual
        if new_residual_sq < residual_tol:
            break
        direction = residual + (new_residual_sq / residual_sq) * direction
        residual_sq = new_residual_sq
    return x


@dataclass
class TRPOResult:
    loss_before: float
    loss_after: float
    kl: float
    step_fraction: float  # accepted fraction of the full step; 0 if the line search failed
    backtracks: int


def trpo_step(
    params: list[Tensor],
    loss_and_kl: Callable[[bool], tuple[Tensor, Tensor]],
    max_kl: float,
    cg_iterations: int = 10,
    cg_damping: float = 1e-5,
    backtrack_ratio: float = 0.5,
    max_backtracks: int = 15,
) -> TRPOResult:
    """One trust-region step on `params` (updated in place).

    `loss_and_kl(differentiable)` returns the surrogate loss to minimise and the mean KL from
    the sampling policy, both scalars; with differentiable=True they must carry a graph deep
    enough for a Hessian-vector product of the KL. The step solves H x = -g by conjugate
    gradient (H = KL Hessian + damping I), scales it to KL = max_kl, and backtracks until
    the loss decreases and the KL stays within max_kl.
    """
    loss, kl = loss_and_kl(True)
    grad = flat_concat(list(torch.autograd.grad(loss, params, retain_graph=True)))
    kl_grad = flat_concat(list(torch.autograd.grad(kl, params, create_graph=True)))

    def fisher_vector_product(vector: Tensor) -> Tensor:
        hvp = torch.autograd.grad(kl_grad @ vector, params, retain_graph=True)
        return flat_concat(list(hvp)) + cg_damping * vector

    step_direction = conjugate_gradient(fisher_vector_product, -grad, cg_iterations)
    shs = 0.5 * (step_direction @ fisher_vector_product(step_direction))
    # Scale so that the quadratic model of the KL, 0.5 x^T H x, equals max_kl.
    full_step = step_direction * torch.sqrt(max_kl / shs.clamp(min=1e-12))
    loss_before = float(loss.detach())
    old_values = [p.detach().clone() for p in params]

    def set_params(fraction: float) -> None:
        offset = 0
        with torch.no_grad():
            for param, old in zip(params, old_values):
                size = param.numel()
                param.copy_(old + fraction * full_step[offset : offset + size].view_as(param))
                offset += size

    fraction = 1.0
    for backtrack in range(max_backtracks):
        set_params(fraction)
        new_loss, new_kl = loss_and_kl(False)
        new_loss_value, new_kl_value = float(new_loss.detach()), float(new_kl.detach())
        if new_loss_value < loss_before and new_kl_value <= max_kl:
            return TRPOResult(loss_before, new_loss_value, new_kl_value, fraction, backtrack)
        fraction *= backtrack_ratio
    set_params(0.0)
    return TRPOResult(loss_before, loss_before, 0.0, 0.0, max_backtracks)
