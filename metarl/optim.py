"""Optimisation pieces: conjugate gradient, the TRPO step, and checked first-order steps.

Every update refuses a step whose loss, gradient or new parameters are not finite by raising
`NonFiniteError` naming the quantity; the training loop then restores the parameters of
before the meta-iteration (`metarl.training`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

# A calibrated step aims 5% under max_kl: the quadratic extrapolation from the measured KL
# landed within 0.97-1.04 of its target on paper-sized HalfCheetah steps, so the first trial
# is then usually accepted without a backtrack.
CALIBRATED_KL_SHARE = 0.95


class NonFiniteError(FloatingPointError):
    """An update met a loss, gradient or parameter that is not finite; the message names it."""


class DivergenceWarning(RuntimeWarning):
    """Training is diverging while its numbers stay finite (e.g. a value loss far above the
    scale of its targets)."""


def require_finite(quantity: str, value: Tensor | float) -> None:
    """`NonFiniteError` naming `quantity` unless every element of `value` is finite."""
    tensor = torch.as_tensor(value).detach()
    if not torch.isfinite(tensor).all():
        bad = tensor[~torch.isfinite(tensor)].reshape(-1)
        raise NonFiniteError(
            f"{quantity} is not finite ({bad.numel()} of {tensor.numel()} values, e.g. {bad[0]})"
        )


def non_finite_entries(tree: Any, prefix: str = "") -> list[str]:
    """The dotted names of the floating-point tensors (and floats) in a nested dict/list of
    state (a state dict, an optimizer's) holding a value that is not finite."""
    if isinstance(tree, dict):
        return [name for key, value in tree.items() for name in non_finite_entries(value, f"{prefix}{key}.")]
    if isinstance(tree, (list, tuple)):
        return [name for i, value in enumerate(tree) for name in non_finite_entries(value, f"{prefix}{i}.")]
    if isinstance(tree, Tensor) and tree.is_floating_point():
        return [] if bool(torch.isfinite(tree).all()) else [prefix.rstrip(".")]
    if isinstance(tree, float) and not math.isfinite(tree):
        return [prefix.rstrip(".")]
    return []


def checked_step(
    optimizer: torch.optim.Optimizer,
    loss: Tensor,
    what: str,
    before_step: Callable[[], None] | None = None,
) -> None:
    """One optimizer step on `loss` (a scalar to minimise): backward, `before_step()` (e.g.
    gradient clipping), step. Raises `NonFiniteError` naming `what` if the loss, a gradient or
    a parameter after the step is not finite."""
    require_finite(f"the {what}", loss)
    optimizer.zero_grad()
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for param in params:
        if param.grad is not None:
            require_finite(f"the gradient of the {what}", param.grad)
    if before_step is not None:
        before_step()
    optimizer.step()
    for param in params:
        require_finite(f"the parameters after the {what}'s step", param)


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


def hessian_vector_product(
    gradients: list[Tensor], inputs: list[Tensor], vectors: list[Tensor]
) -> list[Tensor]:
    """d(gradients . vectors)/d(inputs) for gradients computed with create_graph=True.

    Gradients that are constant (no graph) contribute nothing; unused inputs get zeros.
    """
    pairs = [(g, v) for g, v in zip(gradients, vectors) if g.requires_grad]
    if not pairs:
        return [torch.zeros_like(x) for x in inputs]
    products = torch.autograd.grad(
        [g for g, _ in pairs],
        inputs,
        grad_outputs=[v for _, v in pairs],
        retain_graph=True,
        allow_unused=True,
    )
    return [torch.zeros_like(x) if p is None else p for p, x in zip(products, inputs)]


def autograd_fisher_vector_product(kl: Tensor, params: list[Tensor]) -> Callable[[Tensor], Tensor]:
    """v -> (d^2 kl / d params^2) v by double backward; `kl` must carry a graph to `params`."""
    kl_grad = list(torch.autograd.grad(kl, params, create_graph=True))

    def product(vector: Tensor) -> Tensor:
        return flat_concat(hessian_vector_product(kl_grad, params, unflatten(vector, params)))

    return product


def unflatten(vector: Tensor, like: list[Tensor]) -> list[Tensor]:
    """Split a flat vector into tensors shaped like `like`."""
    out, offset = [], 0
    for tensor in like:
        out.append(vector[offset : offset + tensor.numel()].view_as(tensor))
        offset += tensor.numel()
    return out


@dataclass
class TRPOResult:
    loss_before: float
    loss_after: float
    kl: float
    step_fraction: float  # accepted fraction of the full step; 0 if the line search failed
    backtracks: int
    length_scale: float = 1.0  # factor the KL calibration applied to the CG step (1: none)


def trpo_step(
    params: list[Tensor],
    loss_gradient: Tensor,
    fisher_vector_product: Callable[[Tensor], Tensor],
    evaluate: Callable[[], tuple[float, float]],
    loss_before: float,
    max_kl: float,
    cg_iterations: int = 10,
    cg_damping: float = 1e-5,
    backtrack_ratio: float = 0.5,
    max_backtracks: int = 15,
    calibrate_length: bool = False,
) -> TRPOResult:
    """One trust-region step on `params` (updated in place).

    loss_gradient: flat gradient of the surrogate loss (to minimise) at the current params;
    fisher_vector_product: v -> H v with H the Hessian of the mean KL from the sampling
    policy; evaluate(): (loss, kl) at the params as they currently are. The step solves
    (H + damping I) x = -g by conjugate gradient, scales x so that 0.5 x^T H x = max_kl, and
    backtracks until the loss decreases and the KL stays within max_kl.

    calibrate_length: for an approximate H (a preconditioner rather than the KL's Hessian),
    first measure the KL at that step with evaluate() and rescale the step so that the KL,
    quadratic in the step length near the old parameters, becomes CALIBRATED_KL_SHARE *
    max_kl; the line search then starts from the rescaled step. Costs one evaluate().
    """

    def damped_product(vector: Tensor) -> Tensor:
        return fisher_vector_product(vector) + cg_damping * vector

    no_step = TRPOResult(loss_before, loss_before, 0.0, 0.0, 0)
    require_finite("the TRPO loss", loss_before)
    require_finite("the TRPO loss gradient", loss_gradient)
    if loss_gradient.abs().max() == 0:
        return no_step  # nothing to improve; CG would divide 0 by 0
    step_direction = conjugate_gradient(damped_product, -loss_gradient, cg_iterations)
    shs = 0.5 * (step_direction @ damped_product(step_direction))
    full_step = step_direction * torch.sqrt(max_kl / shs.clamp(min=1e-12))
    require_finite("the TRPO step (conjugate gradient on the KL's curvature)", full_step)
    old_values = [p.detach().clone() for p in params]
    length_scale = 1.0

    def set_params(fraction: float) -> None:
        with torch.no_grad():
            step = length_scale * full_step
            for param, old, part in zip(params, old_values, unflatten(step, params)):
                param.copy_(old + fraction * part)

    try:
        if calibrate_length:
            set_params(1.0)
            _, kl = evaluate()
            if math.isfinite(kl) and kl > 0:
                length_scale = math.sqrt(CALIBRATED_KL_SHARE * max_kl / kl)
        fraction = 1.0
        for backtrack in range(max_backtracks):
            set_params(fraction)
            loss, kl = evaluate()
            if loss < loss_before and kl <= max_kl:
                return TRPOResult(loss_before, loss, kl, fraction, backtrack, length_scale)
            fraction *= backtrack_ratio
    except BaseException:
        # An error or Ctrl-C mid-search must not leave a rejected trial point behind.
        _restore(params, old_values)
        raise
    _restore(params, old_values)
    return TRPOResult(loss_before, loss_before, 0.0, 0.0, max_backtracks, length_scale)


def _restore(params: list[Tensor], values: list[Tensor]) -> None:
    with torch.no_grad():
        for param, value in zip(params, values):
            param.copy_(value)
