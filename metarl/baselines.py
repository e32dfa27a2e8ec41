"""Linear feature baseline, fitted per task by ridge regression (Duan et al. 2016, rllab).

Features of a step: ``[clip(obs, -10, 10), clip(obs, -10, 10)^2, s, s^2, s^3, 1]`` with
``s = t / 100`` (t = step index). Fitting is batched over tasks: one linear solve per task
in a single `torch.linalg.solve` call.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metarl.optim import NonFiniteError, require_finite


def features(observations: Tensor, mask: Tensor) -> Tensor:
    """observations [tasks, episodes, time, obs_dim] -> features [tasks, episodes, time, F]."""
    obs = observations.double().clamp(-10, 10)
    horizon = observations.shape[2]
    steps = torch.arange(horizon, dtype=torch.float64) / 100.0
    steps = steps.view(1, 1, horizon, 1).expand(*obs.shape[:3], 1)
    feats = torch.cat([obs, obs * obs, steps, steps**2, steps**3, torch.ones_like(steps)], -1)
    return feats * mask.double().unsqueeze(-1)


def fit_predict(observations: Tensor, mask: Tensor, returns: Tensor, reg_coeff: float = 1e-5) -> Tensor:
    """Fit one linear baseline per task to `returns` and return its values [tasks, episodes, time].

    observations: [tasks, episodes, time, obs_dim]; mask, returns: [tasks, episodes, time].
    The ridge coefficient grows tenfold (up to 5 times) if a solve is not finite.
    `NonFiniteError` if the episodes' observations or returns are not finite.
    """
    require_finite("the sampled observations (the baseline's features)", observations * mask.unsqueeze(-1))
    require_finite("the sampled returns", returns * mask)
    feats = features(observations, mask)
    num_tasks, num_feats = feats.shape[0], feats.shape[-1]
    flat = feats.reshape(num_tasks, -1, num_feats)
    targets = (returns.double() * mask.double()).reshape(num_tasks, -1, 1)
    gram = flat.transpose(1, 2) @ flat
    rhs = flat.transpose(1, 2) @ targets
    eye = torch.eye(num_feats, dtype=torch.float64)
    for _ in range(5):
        try:
            coeffs = torch.linalg.solve(gram + reg_coeff * eye, rhs)
        except torch.linalg.LinAlgError:
            coeffs = torch.full_like(rhs, float("nan"))
        if torch.isfinite(coeffs).all():
            break
        reg_coeff *= 10
    else:
        raise NonFiniteError("the linear baseline's fit is not finite: its features are degenerate")
    values = (flat @ coeffs).reshape(mask.shape)
    return values.to(returns.dtype) * mask
