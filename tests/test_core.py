"""Returns, GAE, baseline, conjugate gradient, TRPO step, functional policy."""

import numpy as np
import pytest
import torch

from metarl import baselines
from metarl.optim import autograd_fisher_vector_product, conjugate_gradient, trpo_step
from metarl.policies import GaussianMLPPolicy, stack_params
from metarl.returns import discounted_returns, gae, normalize_per_task


def _padded(lengths, horizon=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randn(len(lengths), horizon, generator=gen)
    mask = torch.zeros(len(lengths), horizon)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    return rewards * mask, mask


def test_discounted_returns_match_a_direct_sum():
    rewards, mask = _padded([7, 3, 1])
    returns = discounted_returns(rewards, mask, 0.9)
    for i, n in enumerate([7, 3, 1]):
        for t in range(7):
            expected = sum(0.9 ** (k - t) * rewards[i, k].item() for k in range(t, n)) if t < n else 0.0
            assert returns[i, t].item() == pytest.approx(expected, abs=1e-5)


def test_gae_matches_its_definition():
    rewards, mask = _padded([7, 4])
    values = torch.randn(2, 7) * mask
    gamma, lam = 0.95, 0.8
    advantages = gae(rewards, values, mask, gamma, lam)
    for i, n in enumerate([7, 4]):
        v = [values[i, t].item() for t in range(n)] + [0.0]
        deltas = [rewards[i, t].item() + gamma * v[t + 1] - v[t] for t in range(n)]
        for t in range(n):
            expected = sum((gamma * lam) ** (k - t) * deltas[k] for k in range(t, n))
            assert advantages[i, t].item() == pytest.approx(expected, abs=1e-5)
        assert torch.all(advantages[i, n:] == 0)
    # lambda = 1: advantages are returns minus values
    one = gae(rewards, values, mask, gamma, 1.0)
    assert torch.allclose(one, (discounted_returns(rewards, mask, gamma) - values) * mask, atol=1e-5)


def test_normalize_per_task_standardises_valid_steps_only():
    values = torch.randn(3, 4, 5) * 3 + 2
    mask = (torch.rand(3, 4, 5) > 0.3).float()
    normed = normalize_per_task(values, mask)
    for task in range(3):
        valid = normed[task][mask[task] > 0]
        assert valid.mean().item() == pytest.approx(0.0, abs=1e-5)
        assert valid.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)
    assert torch.all(normed[mask == 0] == 0)


def test_linear_baseline_recovers_a_target_in_its_feature_span():
    obs = torch.randn(2, 5, 10, 3)
    mask = torch.ones(2, 5, 10)
    mask[0, 1, 6:] = 0
    feats = baselines.features(obs, mask)
    true_coeffs = torch.randn(2, feats.shape[-1], dtype=torch.float64)
    target = torch.einsum("tesf,tf->tes", feats, true_coeffs).float()
    predicted = baselines.fit_predict(obs, mask, target, reg_coeff=1e-10)
    assert torch.allclose(predicted, target * mask, atol=1e-3)


def test_conjugate_gradient_solves_spd_system():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(8, 8, generator=gen, dtype=torch.float64)
    spd = a @ a.T + 8 * torch.eye(8, dtype=torch.float64)
    b = torch.randn(8, generator=gen, dtype=torch.float64)
    x = conjugate_gradient(lambda v: spd @ v, b, iterations=20)
    assert torch.allclose(spd @ x, b, atol=1e-8)


def test_trpo_step_decreases_loss_within_the_kl_bound():
    # Minimise a linear loss over a Gaussian mean; KL(old||new) = 0.5 |mu - mu_old|^2.
    mu = torch.zeros(3, requires_grad=True)
    direction = torch.tensor([1.0, -2.0, 0.5])

    def loss_and_kl():
        return (mu * direction).sum(), 0.5 * (mu**2).sum()

    loss, kl = loss_and_kl()
    gradient = torch.autograd.grad(loss, mu)[0]
    fvp = autograd_fisher_vector_product(kl, [mu])
    assert torch.allclose(fvp(torch.tensor([1.0, 2.0, 3.0])), torch.tensor([1.0, 2.0, 3.0]))

    def evaluate():
        with torch.no_grad():
            return tuple(float(x) for x in loss_and_kl())

    result = trpo_step([mu], gradient, fvp, evaluate, float(loss.detach()), max_kl=0.01)
    assert result.loss_after < result.loss_before
    assert result.kl <= 0.01 + 1e-6
    # the full step lands on the constraint along -direction
    expected = -direction / direction.norm() * np.sqrt(2 * 0.01)
    assert torch.allclose(mu.detach(), expected, atol=1e-4)


def test_functional_policy_evaluates_each_task_with_its_own_parameters():
    policy = GaussianMLPPolicy(3, 2, (8, 8), generator=torch.Generator().manual_seed(0))
    stacked = {k: v.detach().clone() for k, v in stack_params(policy.params(), 4).items()}
    for name in stacked:
        stacked[name] += 0.1 * torch.randn_like(stacked[name])
    obs = torch.randn(4, 5, 6, 3)
    batched = policy.distribution(obs, stacked)
    for task in range(4):
        single = policy.distribution(
            obs[task : task + 1], {k: v[task : task + 1] for k, v in stacked.items()}
        )
        assert torch.allclose(batched.loc[task], single.loc[0], atol=1e-6)
        assert torch.allclose(batched.scale[task], single.scale[0])
    assert batched.loc.shape == (4, 5, 6, 2)


def _quadratic_problem():
    mu = torch.zeros(3, requires_grad=True)
    direction = torch.tensor([1.0, -2.0, 0.5])
    loss, kl = (mu * direction).sum(), 0.5 * (mu**2).sum()
    return (
        mu,
        direction,
        torch.autograd.grad(loss, mu, retain_graph=True)[0],
        autograd_fisher_vector_product(kl, [mu]),
    )


def test_trpo_line_search_backtracks_to_an_acceptable_step():
    mu, direction, gradient, fvp = _quadratic_problem()
    fractions = []

    def evaluate():  # reject the full step: pretend the KL is too large until halved twice
        fraction = float(mu.detach().norm() / np.sqrt(2 * 0.01))
        fractions.append(fraction)
        return float((mu * direction).sum()), 0.01 * fraction**2 * (100.0 if fraction > 0.3 else 1.0)

    result = trpo_step([mu], gradient, fvp, evaluate, 0.0, max_kl=0.01, backtrack_ratio=0.5)
    assert result.backtracks == 2 and result.step_fraction == pytest.approx(0.25)
    assert fractions == pytest.approx([1.0, 0.5, 0.25], rel=1e-4)


def test_trpo_calibrated_length_reaches_the_kl_bound_with_an_overestimated_curvature():
    """A preconditioner 4x the true KL Hessian makes the plain step reach max_kl / 4; the
    calibrated step measures the KL once and rescales onto 0.95 max_kl (KL quadratic)."""
    from metarl.optim import CALIBRATED_KL_SHARE

    results = {}
    for calibrate in (False, True):
        mu, direction, gradient, fvp = _quadratic_problem()

        def evaluate(mu=mu, direction=direction):
            with torch.no_grad():
                return float((mu * direction).sum()), float(0.5 * (mu**2).sum())

        def overestimated(vector, fvp=fvp):
            return 4.0 * fvp(vector)

        results[calibrate] = trpo_step(
            [mu], gradient, overestimated, evaluate, 0.0, max_kl=0.01, calibrate_length=calibrate
        )
        expected_kl = CALIBRATED_KL_SHARE * 0.01 if calibrate else 0.01 / 4
        assert float(0.5 * (mu.detach() ** 2).sum()) == pytest.approx(expected_kl, rel=1e-4)
    assert results[False].length_scale == 1.0 and results[False].kl == pytest.approx(0.0025, rel=1e-4)
    assert results[True].length_scale == pytest.approx(2 * np.sqrt(CALIBRATED_KL_SHARE), rel=1e-4)
    assert results[True].backtracks == 0 and results[True].loss_after < results[False].loss_after


def test_trpo_restores_the_parameters_when_the_search_fails_or_is_interrupted():
    mu, _, gradient, fvp = _quadratic_problem()
    result = trpo_step([mu], gradient, fvp, lambda: (1.0, 0.0), 0.0, max_kl=0.01, max_backtracks=3)
    assert result.step_fraction == 0.0 and torch.equal(mu.detach(), torch.zeros(3))

    def interrupted():
        raise KeyboardInterrupt

    mu, _, gradient, fvp = _quadratic_problem()
    with pytest.raises(KeyboardInterrupt):
        trpo_step([mu], gradient, fvp, interrupted, 0.0, max_kl=0.01)
    assert torch.equal(mu.detach(), torch.zeros(3))
    # a zero gradient takes no step (and produces no NaN)
    mu, _, _, fvp = _quadratic_problem()
    result = trpo_step([mu], torch.zeros(3), fvp, lambda: (0.0, 0.0), 0.0, max_kl=0.01)
    assert result.step_fraction == 0.0 and torch.equal(mu.detach(), torch.zeros(3))


def test_logger_writes_tensorboard_and_csv_and_widens_the_header(tmp_path):
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from metarl.logger import Logger

    logger = Logger(tmp_path)
    logger.record_many({"a": 1.5, "charts/iteration": 1, "charts/env_steps": 10})
    logger.dump(10)
    logger.record_many({"a": 2.5, "b": 7, "charts/iteration": 2, "charts/env_steps": 20})
    logger.dump(20)
    logger.close()
    with open(tmp_path / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [
        {"a": "1.5", "charts/iteration": "1", "charts/env_steps": "10", "b": ""},
        {"a": "2.5", "charts/iteration": "2", "charts/env_steps": "20", "b": "7"},
    ]
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("a")] == [(10, 1.5), (20, 2.5)]
    # resuming at iteration 1 drops the later rows
    Logger(tmp_path, resume_iteration=1).close()
    with open(tmp_path / "progress.csv", newline="") as handle:
        assert [r["charts/iteration"] for r in csv.DictReader(handle)] == ["1"]


def test_config_yaml_reads_an_exponent_without_a_dot_as_a_float(tmp_path):
    from metarl.config import load_config

    preset = tmp_path / "preset.yaml"
    preset.write_text("agent: maml_ppo\nouter_lr: 3e-4\n")  # YAML 1.1 would read a string
    assert load_config(str(preset), []).outer_lr == 3e-4
    config = load_config(None, ["agent=maml_ppo", "outer_lr=2e-3", "eval_inner_lrs=[1e-1, 5e-2]"])
    assert load_config(None, ["max_kl=1E-2"]).max_kl == 0.01
    assert (config.outer_lr, config.eval_inner_lrs) == (2e-3, [0.1, 0.05])
