"""MAML-TRPO: batched adaptation, second-order gradient, learning, determinism, resume."""

import csv

import numpy as np
import pytest
import torch

from metarl.agent import build
from metarl.config import load_config
from metarl.episodes import Episodes
from metarl.policies import stack_params
from metarl.tasks import sample_test_tasks
from metarl.training import train

SMALL = [
    "sampler_backend=local",
    "meta_batch_size=8",
    "episodes_per_task=10",
    "hidden_sizes=[32,32]",
    "checkpoint_every=2",
]


def _episodes(num_tasks, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shape = (num_tasks, 3, 5)
    return Episodes(
        observations=torch.randn(*shape, 2, generator=gen, dtype=dtype),
        actions=torch.randn(*shape, 2, generator=gen, dtype=dtype),
        rewards=torch.randn(*shape, generator=gen, dtype=dtype),
        mask=torch.ones(*shape, dtype=dtype),
        terminated=torch.zeros(num_tasks, 3, dtype=torch.bool),
        tasks=[{}] * num_tasks,
    )


def _two_inner_steps(agent, first_order):
    """Two inner steps (lr 0.5) on 2 tasks from the meta-parameters: (steps, adapted params)."""
    from metarl.agents.maml import InnerStep

    inner_steps, params = [], stack_params({k: v.detach() for k, v in agent.policy.params().items()}, 2)
    for seed in (1, 2):
        inner_steps.append(InnerStep.build(agent, params, _episodes(2, seed=seed), first_order))
        params = inner_steps[-1].adapted(0.5)
    return inner_steps, params


@pytest.fixture
def agent():
    config = load_config(  # smooth: finite differences; the exact curvature, on every task
        None, SMALL + ["hidden_sizes=[4,4]", "activation=tanh", "curvature_tasks=1.0"]
    )
    agent, _, sampler = build(config)
    agent.policy.double()
    yield agent
    sampler.close()


def test_batched_inner_step_equals_per_task_steps(agent):
    episodes = _episodes(3)
    advantages = torch.randn(3, 3, 5, dtype=torch.float64)
    stacked = stack_params(agent.policy.params(), 3)
    batched = agent.inner_update(stacked, episodes, advantages, 0.1, create_graph=False)
    for task in range(3):
        one = Episodes(
            *(
                getattr(episodes, f)[task : task + 1]
                for f in ("observations", "actions", "rewards", "mask", "terminated")
            ),
            tasks=[{}],
        )
        single = agent.inner_update(
            stack_params(agent.policy.params(), 1), one, advantages[task : task + 1], 0.1, False
        )
        for name in batched:
            assert torch.allclose(batched[name][task], single[name][0], atol=1e-12)


def test_second_order_meta_gradient_matches_finite_differences(agent):
    train_eps, valid_eps = _episodes(2, seed=1), _episodes(2, seed=2)
    train_adv, valid_adv = (
        torch.randn(2, 3, 5, dtype=torch.float64),
        torch.randn(2, 3, 5, dtype=torch.float64),
    )
    params = list(agent.policy.parameters())

    def objective(create_graph):
        adapted = agent.inner_update(
            stack_params(agent.policy.params(), 2), train_eps, train_adv, 0.5, create_graph
        )
        return agent.inner_loss(adapted, valid_eps, valid_adv).sum()

    second = torch.autograd.grad(objective(True), params)
    first = torch.autograd.grad(objective(False), params)
    direction = [torch.randn_like(p) for p in params]
    eps = 1e-6
    with torch.no_grad():
        for p, d in zip(params, direction):
            p += eps * d
    plus = objective(False).item()
    with torch.no_grad():
        for p, d in zip(params, direction):
            p -= 2 * eps * d
    minus = objective(False).item()
    numeric = (plus - minus) / (2 * eps)
    analytic = sum((g * d).sum() for g, d in zip(second, direction)).item()
    first_order = sum((g * d).sum() for g, d in zip(first, direction)).item()
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    assert abs(first_order - numeric) > 1e-4 * max(1.0, abs(numeric))  # the switch changes the gradient


def test_short_meta_training_improves_adaptation(tmp_path):
    config = load_config(None, SMALL + ["meta_iterations=8"])
    untrained, family, sampler = build(config)
    tasks = sample_test_tasks(family, 10, config.seed)
    with sampler:
        before = untrained.adaptation_curve(tasks, 1, [0.1], seed=5)
    train(config, tmp_path / "run", progress=False)
    from metarl.checkpoint import load_checkpoint

    trained, _, sampler = build(config)
    trained.load_state_dict(load_checkpoint(tmp_path / "run")["agent"])
    with sampler:
        after = trained.adaptation_curve(tasks, 1, [0.1], seed=5)
    before, after = before.mean(1), after.mean(1)
    # adaptation helps, and meta-training made the adapted policy clearly better
    assert after[1] > after[0] + 5.0, (before, after)
    assert after[1] > before[1] + 20.0, (before, after)


def _csv_rows(path):
    with open(path, newline="") as handle:
        return [
            {k: v for k, v in row.items() if not k.startswith(("time/", "charts/env_steps_per_s"))}
            for row in csv.DictReader(handle)
        ]


def test_same_seed_same_numbers_and_resume_equals_uninterrupted(tmp_path):
    config = load_config(None, SMALL + ["meta_iterations=4", "hidden_sizes=[16,16]"])
    full = train(config, tmp_path / "full", progress=False)
    again = train(config, tmp_path / "again", progress=False)
    short = load_config(None, SMALL + ["meta_iterations=2", "hidden_sizes=[16,16]"])
    part = train(short, tmp_path / "part", progress=False)
    from metarl.checkpoint import load_checkpoint

    state = load_checkpoint(part)
    assert state["iteration"] == 2
    state["config"]["meta_iterations"] = 4
    from metarl.config import config_from_dict

    train(config_from_dict(state["config"]), part, resume_state=state, progress=False)
    final = {name: load_checkpoint(run) for name, run in [("full", full), ("again", again), ("part", part)]}
    for name in ("again", "part"):
        assert final[name]["iteration"] == 4
        assert final[name]["env_steps"] == final["full"]["env_steps"]
        for key, value in final["full"]["agent"]["policy"].items():
            assert torch.equal(value, final[name]["agent"]["policy"][key]), (name, key)
    assert _csv_rows(full / "progress.csv") == _csv_rows(again / "progress.csv")
    assert _csv_rows(full / "progress.csv") == _csv_rows(part / "progress.csv")
    assert len(_csv_rows(part / "progress.csv")) == 4
    # a different seed gives different numbers
    other = train(
        load_config(None, SMALL + ["meta_iterations=1", "seed=2", "hidden_sizes=[16,16]"]),
        tmp_path / "other",
        progress=False,
    )
    assert _csv_rows(other / "progress.csv")[0] != _csv_rows(full / "progress.csv")[0]
    assert np.isfinite(float(_csv_rows(full / "progress.csv")[-1]["meta/return_post_adapt"]))


def test_two_inner_steps_sample_three_batches_and_take_a_step():
    config = load_config(
        None,
        SMALL
        + [
            "num_inner_steps=2",
            "meta_batch_size=4",
            "episodes_per_task=5",
            "horizon=30",
            "hidden_sizes=[16,16]",
        ],
    )
    agent, family, sampler = build(config)
    before = {k: v.detach().clone() for k, v in agent.policy.params().items()}
    with sampler:
        metrics = agent.train_step(family.sample_tasks(4, np.random.default_rng(0)), iteration=0)
    # pre-adaptation, after one step, after two steps: 3 x 4 tasks x 5 episodes x <= 30 steps
    assert 3 * 4 * 5 * 25 < metrics["charts/iteration_env_steps"] <= 3 * 4 * 5 * 30
    assert metrics["trpo/step_fraction"] > 0 and 0 < metrics["losses/kl"] <= config.max_kl
    assert metrics["losses/surrogate_after"] < metrics["losses/surrogate_before"]
    assert any(not torch.equal(before[k], v) for k, v in agent.policy.params().items())


def test_a_crash_mid_update_keeps_the_completed_iterations_and_resumes_exactly(tmp_path, monkeypatch):
    """A crash inside iteration 3's line search saves iteration 2's weights, not a trial point."""
    from metarl.checkpoint import load_checkpoint
    from metarl.config import config_from_dict

    tiny = SMALL + [
        "checkpoint_every=10",
        "meta_batch_size=2",
        "episodes_per_task=3",
        "horizon=10",
        "hidden_sizes=[8,8]",
    ]
    reference = train(load_config(None, tiny + ["meta_iterations=2"]), tmp_path / "two", progress=False)
    uninterrupted = train(load_config(None, tiny + ["meta_iterations=4"]), tmp_path / "four", progress=False)

    import metarl.agents.maml

    original, calls = metarl.agents.maml.trpo_step, []

    def crash_in_third_line_search(params, gradient, fvp, evaluate, *args, **kwargs):
        calls.append(1)

        def crashing_evaluate():
            if len(calls) == 3:
                raise RuntimeError("simulated crash")
            return evaluate()

        return original(params, gradient, fvp, crashing_evaluate, *args, **kwargs)

    monkeypatch.setattr(metarl.agents.maml, "trpo_step", crash_in_third_line_search)
    config = load_config(None, tiny + ["meta_iterations=4"])
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, tmp_path / "run", progress=False)
    monkeypatch.setattr(metarl.agents.maml, "trpo_step", original)
    state = load_checkpoint(tmp_path / "run")
    assert state["iteration"] == 2 and len(_csv_rows(tmp_path / "run" / "progress.csv")) == 2
    for key, value in load_checkpoint(reference)["agent"]["policy"].items():
        assert torch.equal(value, state["agent"]["policy"][key]), key

    train(config_from_dict(state["config"]), tmp_path / "run", resume_state=state, progress=False)
    resumed, full = load_checkpoint(tmp_path / "run"), load_checkpoint(uninterrupted)
    for key, value in full["agent"]["policy"].items():
        assert torch.equal(value, resumed["agent"]["policy"][key]), key
    assert _csv_rows(tmp_path / "run" / "progress.csv") == _csv_rows(uninterrupted / "progress.csv")


@pytest.mark.parametrize("first_order", [False, True])
def test_outer_step_terms_equal_autograd_through_the_adaptation(agent, first_order):
    """The meta-gradient J^T g and the KL Hessian J^T F J equal plain (third-order) autograd."""
    from metarl.optim import autograd_fisher_vector_product, flat_concat

    agent.config.first_order, agent.config.num_inner_steps, agent.config.inner_lr = first_order, 2, 0.5
    theta = list(agent.policy.parameters())
    inner_steps, params = _two_inner_steps(agent, first_order)
    valid, valid_adv = _episodes(2, seed=3), torch.randn(2, 3, 5, dtype=torch.float64)
    surrogate, gradient, fvp, evaluate = agent.outer_terms(inner_steps, valid, valid_adv)

    adapted = stack_params(agent.policy.params(), 2)
    for step in inner_steps:
        adapted = agent.inner_update(
            adapted, step.episodes, step.advantages, 0.5, create_graph=not first_order
        )
    dist = agent.policy.distribution(valid.observations, adapted)
    old = torch.distributions.Normal(dist.loc.detach(), dist.scale.detach())
    old_log_probs = agent.policy.log_prob(old, valid.actions)
    ref_surrogate, ref_kl = agent._surrogate_and_kl(dist, old, old_log_probs, valid, valid_adv)
    ref_gradient = flat_concat(list(torch.autograd.grad(ref_surrogate, theta, retain_graph=True)))
    ref_fvp = autograd_fisher_vector_product(ref_kl, theta)

    assert surrogate == pytest.approx(float(ref_surrogate), abs=1e-12)
    assert torch.allclose(gradient, ref_gradient, atol=1e-10)
    for seed in range(3):
        vector = torch.randn(
            gradient.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
        )
        assert torch.allclose(fvp(vector), ref_fvp(vector), atol=1e-9), seed
    loss, kl = evaluate()
    assert loss == pytest.approx(surrogate, abs=1e-12) and kl == pytest.approx(0.0, abs=1e-12)


def test_subsampled_curvature_is_f_on_the_first_episodes_and_leaves_the_gradient_exact(agent):
    """curvature_fraction < 1: the CG's matrix is the KL Hessian F in the adapted parameters
    on each task's first episodes, without the adaptation's Jacobian (J taken as I); the
    gradient is still the full J^T g, and the step's length is calibrated."""
    from metarl.agents.maml import InnerStep, masked_task_mean

    from metarl.optim import autograd_fisher_vector_product

    agent.config.inner_lr = 0.5
    theta = list(agent.policy.parameters())
    start = stack_params({k: v.detach() for k, v in agent.policy.params().items()}, 2)
    inner = InnerStep.build(agent, start, _episodes(2, seed=1), False)
    valid, valid_adv = _episodes(2, seed=3), torch.randn(2, 3, 5, dtype=torch.float64)
    agent.config.curvature_fraction = 1.0
    assert not agent.approximates_curvature(valid)
    _, full_gradient, full_fvp, _ = agent.outer_terms([inner], valid, valid_adv)
    agent.config.curvature_fraction = 0.34  # 1 of 3 episodes
    assert agent.approximates_curvature(valid)
    _, gradient, fvp, _ = agent.outer_terms([inner], valid, valid_adv)

    # reference: autograd through theta -> theta + (phi - theta) with the shift held fixed
    # (J = I), then the KL on the first validation episodes
    stacked = stack_params(agent.policy.params(), 2)
    adapted = inner.adapted(0.5)
    point = {k: stacked[k] + (adapted[k] - stacked[k]).detach() for k in stacked}
    first_valid = valid.first(1)
    dist = agent.policy.distribution(first_valid.observations, point)
    old = torch.distributions.Normal(dist.loc.detach(), dist.scale.detach())
    kl = masked_task_mean(agent.policy.kl(old, dist), first_valid.mask).mean()
    ref_fvp = autograd_fisher_vector_product(kl, theta)

    assert torch.equal(gradient, full_gradient)
    vector = torch.randn(gradient.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(fvp(vector), ref_fvp(vector), atol=1e-9)
    assert not torch.allclose(fvp(vector), full_fvp(vector), atol=1e-3)


def test_task_subset_curvature_is_the_exact_curvature_of_the_leading_tasks(agent):
    """curvature_tasks < 1: the CG's matrix is the exact J^T F J (through both inner steps)
    of the meta-batch's first tasks alone, each with its own inner episodes: the same product
    as an exact outer step on a batch of just those tasks; the gradient stays the full one."""
    from metarl.agents.maml import InnerStep

    agent.config.inner_lr, agent.config.num_inner_steps = 0.5, 2

    def inner_steps_on(num_tasks: int) -> list[InnerStep]:
        steps, params = [], stack_params({k: v.detach() for k, v in agent.policy.params().items()}, num_tasks)
        for seed in (1, 2):
            episodes = _episodes(4, seed=seed).leading_tasks(num_tasks)
            steps.append(InnerStep.build(agent, params, episodes, False))
            params = steps[-1].adapted(0.5)
        return steps

    valid, valid_adv = _episodes(4, seed=3), torch.randn(4, 3, 5, dtype=torch.float64)
    _, full_gradient, full_fvp, _ = agent.outer_terms(inner_steps_on(4), valid, valid_adv)
    _, _, leading_fvp, _ = agent.outer_terms(inner_steps_on(2), valid.leading_tasks(2), valid_adv[:2])
    agent.config.curvature_tasks = 0.5  # 2 of 4 tasks
    assert agent.curvature_task_count(valid) == 2 and not agent.approximates_curvature(valid)
    _, gradient, fvp, _ = agent.outer_terms(inner_steps_on(4), valid, valid_adv)

    assert torch.equal(gradient, full_gradient)
    vector = torch.randn(gradient.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(fvp(vector), leading_fvp(vector), atol=1e-10)
    assert not torch.allclose(fvp(vector), full_fvp(vector), atol=1e-3)


def test_maml_ppo_first_epoch_gradient_is_the_trpo_meta_gradient(agent):
    """At the sampling parameters the ratio is 1 and nothing is clipped: the PPO loss's
    gradient through the recomputed adaptation equals MAML-TRPO's second-order
    meta-gradient J^T g (computed by a different route: Hessian-vector products)."""
    from metarl.agents.maml import PPOOuterStep

    agent.config.inner_lr, agent.config.num_inner_steps = 0.5, 2
    # the PPO step of a maml_ppo run with the same inner loop (the fixture's agent is maml_trpo)
    ppo_config = load_config(None, SMALL + ["agent=maml_ppo", "inner_lr=0.5", "num_inner_steps=2"])
    ppo = PPOOuterStep(ppo_config, agent.policy)
    inner_steps, params = _two_inner_steps(agent, False)
    valid, valid_adv = _episodes(2, seed=3), torch.randn(2, 3, 5, dtype=torch.float64)
    _, trpo_gradient, _, _ = agent.outer_terms(inner_steps, valid, valid_adv)

    with torch.no_grad():
        old = agent.policy.log_prob(agent.policy.distribution(valid.observations, params), valid.actions)
    loss, kl, clipped = ppo.ppo_loss(
        agent, ppo.adapted_from_meta(agent, inner_steps, 2), valid, valid_adv, old
    )
    gradient = torch.autograd.grad(loss, list(agent.policy.parameters()))
    from metarl.optim import flat_concat

    assert torch.allclose(flat_concat(list(gradient)), trpo_gradient, atol=1e-10)
    assert float(kl) == pytest.approx(0.0, abs=1e-12) and float(clipped) == 0.0


def test_maml_ppo_improves_adaptation_and_resumes_exactly(tmp_path):
    ppo = ["agent=maml_ppo", "outer_lr=0.01", "ppo_epochs=5"]
    config = load_config(None, SMALL + ppo + ["meta_iterations=8"])
    untrained, family, sampler = build(config)
    tasks = sample_test_tasks(family, 10, config.seed)
    with sampler:
        before = untrained.adaptation_curve(tasks, 1, [0.1], seed=5)
    full = train(config, tmp_path / "full", progress=False)
    from metarl.checkpoint import load_checkpoint
    from metarl.config import config_from_dict

    trained, _, sampler = build(config)
    trained.load_state_dict(load_checkpoint(full)["agent"])
    with sampler:
        after = trained.adaptation_curve(tasks, 1, [0.1], seed=5)
    before, after = before.mean(1), after.mean(1)
    assert after[1] > before[1] + 10.0, (before, after)

    # resume after 5 iterations (Adam state included) equals the uninterrupted run
    part = train(load_config(None, SMALL + ppo + ["meta_iterations=5"]), tmp_path / "part", progress=False)
    state = load_checkpoint(part)
    assert set(state["agent"]) == {"policy", "optimizer"}
    state["config"]["meta_iterations"] = 8
    train(config_from_dict(state["config"]), part, resume_state=state, progress=False)
    final, resumed = load_checkpoint(full), load_checkpoint(part)
    for key, value in final["agent"]["policy"].items():
        assert torch.equal(value, resumed["agent"]["policy"][key]), key
    assert _csv_rows(full / "progress.csv") == _csv_rows(part / "progress.csv")
