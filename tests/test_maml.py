"""MAML-TRPO: batched adaptation, second-order gradient, learning, determinism, resume."""

import csv

import numpy as np
import pytest
import torch

from agents import build
from metarl.config import load_config
from metarl.episodes import Episodes
from metarl.policies import stack_params
from metarl.tasks import sample_test_tasks
from train import train

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


@pytest.fixture
def agent():
    config = load_config(None, SMALL + ["hidden_sizes=[4,4]"])
    agent, _, sampler = build(config)
    agent.policy.double()
    yield agent
    sampler.close()


def test_batched_inner_step_equals_per_task_steps(agent):
    episodes = _episodes(3)
    advantages = torch.randn(3, 3, 5, dtype=torch.float64)
    stacked = stack_params(agent.policy.params(), 3)
    batched = agent.adapt(stacked, episodes, advantages, 0.1, create_graph=False)
    for task in range(3):
        one = Episodes(
            *(
                getattr(episodes, f)[task : task + 1]
                for f in ("observations", "actions", "rewards", "mask", "terminated")
            ),
            tasks=[{}],
        )
        single = agent.adapt(
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
        adapted = agent.adapt(stack_params(agent.policy.params(), 2), train_eps, train_adv, 0.5, create_graph)
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
    assert after[1] > before[1] + 15.0, (before, after)


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
