"""The investigation scripts of research/ (behind docs/results.md): their measurements
equal their definitions. Marked `research`: not in the default run (`-m research` runs them)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_reproduce import TINY

pytestmark = pytest.mark.research
ROOT = Path(__file__).resolve().parents[1]


def test_reward_terms_control_cost_is_the_envs_and_returns_are_evaluates(tmp_path):
    """research/reward_terms.py: the control cost it derives from recorded policy actions
    equals the env's own summed reward_ctrl (actions beyond the bounds included), and its
    returns after 0 and 1 steps are evaluate.py's on the same checkpoint."""
    import json

    import gymnasium as gym
    import numpy as np
    import torch

    import metarl  # noqa: F401  (registers the metarl/ ids)
    from metarl.cli.evaluate import main as evaluate_main
    from metarl.config import load_config
    from metarl.episodes import Episodes
    from metarl.sampling.worker import to_env_actions
    from metarl.training import train
    from research.reward_terms import control_cost

    env = gym.make("metarl/HalfCheetahVel-v0").unwrapped
    env.reset(seed=0)
    policy_actions = np.random.default_rng(0).normal(0.0, 1.5, (2, 3, 5, 6)).astype(np.float32)
    mask = np.ones((2, 3, 5), np.float32)
    mask[1, 2, 3:] = 0.0  # a shorter episode
    expected = np.zeros(2)
    for task, episode, step in zip(*np.nonzero(mask)):
        action = to_env_actions(policy_actions[task, episode, step][None], env.action_space)[0]
        expected[task] -= env.step(action)[4]["reward_ctrl"] / 3  # mean over 3 episodes
    episodes = Episodes(
        observations=torch.zeros(2, 3, 5, 17),
        actions=torch.from_numpy(policy_actions),
        rewards=torch.zeros(2, 3, 5),
        mask=torch.from_numpy(mask),
        terminated=torch.zeros(2, 3, dtype=torch.bool),
        tasks=[{"velocity": 1.0}] * 2,
    )
    np.testing.assert_allclose(control_cost(episodes, env.action_space, 0.05), expected, rtol=1e-5)

    config = load_config(ROOT / "configs" / "maml_trpo_halfcheetah_vel.yaml", [*TINY, "meta_iterations=1"])
    run = train(config, tmp_path / "run", progress=False)
    assert evaluate_main([str(run), "--steps", "1", "--out", str(tmp_path / "eval")]) == 0
    evaluated = [
        row["mean_return"] for row in json.loads((tmp_path / "eval" / "evaluation.json").read_text())["steps"]
    ]
    result = subprocess.run(
        [sys.executable, "research/reward_terms.py", str(run)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [
        line.split("|")[1:-1]
        for line in result.stdout.splitlines()
        if line.startswith("| 0 ") or line.startswith("| 1 ")
    ]
    assert len(rows) == 2
    for (_, total, rest, cost, _), mean in zip(rows, evaluated):
        total, rest, cost = (float(cell.split("±")[0]) for cell in (total, rest, cost))
        assert abs(total - mean) < 0.01 and abs(rest + cost - total) < 0.02 and cost < 0


def test_curvature_quality_secant_and_steps(tmp_path):
    """research/curvature_quality.py: the authors' secant converges to the exact J^T F J
    product as its eps shrinks (their eps, 1 / |theta|, is far from that limit here); on a
    real batch the exact row is its own reference, the task-subset option at share 1 is the
    exact step, and every accepted step fits max_kl."""
    import torch

    from metarl.agent import build
    from metarl.checkpoint import load_run
    from metarl.config import load_config
    from metarl.tasks import sample_train_tasks
    from metarl.training import train
    from research.curvature_quality import authors_secant_product, measure

    config = load_config(
        ROOT / "configs" / "frameskip1_maml_trpo_halfcheetah_dir.yaml",
        [*TINY, "meta_iterations=1", "curvature_tasks=1.0"],  # exact: what the secant approaches
    )
    run = train(config, tmp_path / "run", progress=False)

    state, config = load_run(run)
    agent, family, sampler = build(config)
    agent.load_state_dict(state["agent"])
    captured = {}
    agent.outer.step = lambda _agent, *batch: captured.setdefault("batch", batch) and {}
    with sampler:
        agent.train_step(sample_train_tasks(family, 2, config.seed, 1), 1)
    inner_steps, valid, advantages = captured["batch"]
    _, gradient, exact, _ = agent.outer_terms(inner_steps, valid, advantages)
    vector = torch.randn(gradient.shape, generator=torch.Generator().manual_seed(0))
    # first: the secant writes the meta-parameters in place, which the exact product's saved
    # graph shares storage with
    exact_product = exact(vector)
    errors = [
        float((authors_secant_product(agent, inner_steps, valid, eps)(vector) - exact_product).norm())
        / float(exact_product.norm())
        for eps in (1.0, 1e-3)
    ]
    assert errors[1] < 1e-3 < errors[0]  # a secant, exact in the limit (float32 allows 1e-3)

    result = measure(run, task_shares=[1.0, 0.5], episode_shares=[0.5], base_eps=1.0)
    rows = result["options"]
    assert rows["exact"]["gain_ratio"] == 1 and abs(rows["exact"]["cosine"] - 1) < 1e-6
    assert abs(rows["tasks 1"]["cosine"] - 1) < 1e-5 and abs(rows["tasks 1"]["gain_ratio"] - 1) < 1e-5
    for row in rows.values():
        assert row["backtracks"] is None or row["kl"] <= config.max_kl


def test_bandit_behaviour_statistics_and_win_stay_lose_shift():
    """The statistics of scripted pulls equal their definitions, and win-stay-lose-shift's
    total is exact on deterministic arms."""
    import numpy as np

    from research.bandit_behaviour import behaviour, win_stay_lose_shift

    arms = np.array([[0, 0, 1, 2, 1], [2, 2, 2, 0, 0]])
    rewards = np.array([[1, 0, 0, 0, 1], [1, 1, 0, 1, 1]], dtype=np.float32)
    means = np.array([[0.1, 0.9, 0.2], [0.8, 0.3, 0.5]])
    stats = behaviour(arms, rewards, means)
    # wins before pulls 2..5: (0->0 stay), (2->2 stay), (2->2 stay), (0->0 stay): all stay
    assert stats["stay_after_win"] == 1.0
    # losses: trial 0 at pulls 2, 3, 4 (0->1, 1->2, 2->1: switches); trial 1 at pull 3 (2->0)
    assert stats["stay_after_loss"] == 0.0
    assert stats["arms_tried"] == 2.5
    assert stats["best_arm_share"] == (2 + 2) / 10  # arm 1 in trial 0, arm 0 in trial 1
    # switches after a loss to an untried arm: 0->1 yes, 1->2 yes, 2->1 no; 2->0 yes
    assert stats["new_arm_after_loss"] == 3 / 4
    # posterior means before each pull; trial 0: arm 0 (tie) yes; after 0+ on arm 0 yes;
    # after 0- (arm 0 at 1/2, tied with untried) arm 1 yes; after 1- (1/3) arm 2 (1/2) yes;
    # after 2- arm 1 (1/3) against arm 0 (1/2) no. Trial 1: 2 yes, 2 yes, 2 yes, then arm 0
    # (1/2) against arm 2 (3/5) no, then arm 0 (2/3) against arm 2 (3/5) yes.
    assert stats["on_posterior_best"] == 8 / 10
    assert np.isnan(stats["stay_on_losing_record"])  # no arm reaches 0 wins, 3 losses

    losing = behaviour(
        np.array([[0, 0, 0, 0, 1, 1]]), np.array([[0, 0, 0, 0, 0, 1]], dtype=np.float32), means[:1]
    )
    # arm 0 is 0-for-3 after pull 3 (stays for pull 4) and 0-for-4 after pull 4 (leaves)
    assert losing["stay_on_losing_record"] == 0.5
    assert np.isnan(losing["stay_after_win"])  # no win to stay after: NaN, not a warning

    rng = np.random.default_rng(0)
    assert win_stay_lose_shift(np.array([[1.0, 0.0]]), 7, rng) == 7.0  # stays on arm 0
    assert win_stay_lose_shift(np.array([[0.0, 1.0]]), 7, rng) == 6.0  # one loss, then arm 1
    assert win_stay_lose_shift(np.array([[0.0, 0.0, 1.0]]), 7, rng) == 5.0


def test_velocity_tracking_slope_and_error():
    """A policy that runs at the target has slope 1 and no error; one that runs at a fixed
    speed has slope 0 and the mean distance to it."""
    import numpy as np

    from research.velocity_tracking import tracking

    targets = np.array([0.0, 0.5, 1.0, 2.0])
    exact = np.repeat(targets[:, None], 10, axis=1)
    assert tracking(exact, targets, 0, 10) == pytest.approx(
        {"mean_velocity": 0.875, "slope": 1.0, "mean_error": 0.0}
    )
    fixed = np.full((4, 10), 0.5)
    assert tracking(fixed, targets, 0, 10) == pytest.approx(
        {"mean_velocity": 0.5, "slope": 0.0, "mean_error": (0.5 + 0.0 + 0.5 + 1.5) / 4}, abs=1e-12
    )
    late = np.concatenate([fixed[:, :5], exact[:, 5:]], axis=1)  # tracks from step 5 on
    assert tracking(late, targets, 5, 10)["slope"] == pytest.approx(1.0)
    assert tracking(late, targets, 0, 5)["slope"] == pytest.approx(0.0, abs=1e-12)


def test_bandit_imitation_teacher_pulls_and_a_clone_that_learns_win_stay_lose_shift():
    """The teacher's pulls follow its rule; cloning greedy on 2-armed bandits brings the GRU
    from random play to the teacher's level."""
    import numpy as np
    from metarl.agents.classical import bandit_pulls

    from research.bandit_imitation import imitate, make_teacher

    means = np.array([[1.0, 0.0], [0.0, 1.0]])
    arms, rewards = bandit_pulls(means, 6, make_teacher("greedy", 6), np.random.default_rng(0))
    # greedy on deterministic arms: the first pull is a tie; a loss moves it to the other arm
    # (posterior mean 1/3 < 1/2), a win keeps it there
    assert (arms[0, 1:] == 0).all() and (arms[1, 1:] == 1).all()
    chosen = means[np.arange(2)[:, None], arms]
    assert np.array_equal(rewards, chosen)  # 0/1 arms: reward = mean

    rows = list(imitate(2, 10, "greedy", 200, 64, 32, 1e-2, 1000, 100, seed=0))
    first, last = rows[0], rows[-1]
    assert last["iteration"] == 200 and last["loss"] < first["loss"]
    # random play earns 5.0 on 2 arms x 10 pulls; greedy about 6.05 (printed by the script)
    assert last["clone"] > 5.8


def test_mdp_imitation_feeds_the_inputs_rl2_sees_and_its_clone_learns_and_resumes_as_rl2(tmp_path, capsys):
    """The clone reads exactly the inputs RL2 builds from its own sampled trials; a short
    clone of greedy on small MDPs beats random play; `--save-run` writes a run that
    `train.py --resume` continues by RL from the cloned policy; bad input is refused."""
    import numpy as np
    import torch
    from metarl.agents.rl2 import Trials

    from metarl.agent import build
    from metarl.checkpoint import load_run
    from metarl.config import load_config
    from metarl.tasks import sample_test_tasks
    from research.mdp_imitation import imitate, imitation_inputs
    from research.mdp_imitation import main as imitation_main

    preset = str(ROOT / "configs" / "rl2_trpo_tabular_mdp_n10.yaml")
    small = [
        "env_kwargs={num_states: 3, num_actions: 2, episode_length: 4}",
        "horizon=4",
        "episodes_per_trial=3",
        "rnn_hidden_size=16",
        "meta_batch_size=8",
        "num_workers=1",
    ]
    config = load_config(preset, small)
    agent, family, sampler = build(config)
    with sampler:
        episodes = agent.sample(family.sample_tasks(5, np.random.default_rng(0)), (0,))
    trials = Trials.from_episodes(episodes)
    rebuilt = imitation_inputs(
        agent.policy,
        trials.observations.argmax(-1).numpy(),
        trials.actions[..., 0].long().numpy(),
        trials.rewards.numpy(),
        episode_length=4,
    )
    assert torch.equal(rebuilt, agent.inputs(trials))

    agent, family, sampler = build(config)
    held_out = sample_test_tasks(family, 300, config.seed)
    rows = list(imitate(agent, sampler, family, held_out, "greedy", 150, 64, 1e-2, 50))
    assert [row["iteration"] for row in rows] == [50, 100, 150]
    assert rows[-1]["loss"] < rows[0]["loss"]
    random_total = 3 * 4 * 1.0  # 12 steps at a mean reward of E[mu] = 1
    assert rows[-1]["clone"] > random_total + 1.0

    run_dir = tmp_path / "clone"
    args = ["--config", preset, "--iterations", "2", "--batch", "8", "--eval-tasks", "20"]
    assert imitation_main([*args, "--save-run", str(run_dir), *small]) == 0
    state, saved = load_run(run_dir)
    assert state["iteration"] == 0 and saved.rnn_hidden_size == 16
    resumed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--resume",
            str(run_dir),
            "meta_iterations=1",
            "--no-progress",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    after, _ = load_run(run_dir)
    assert after["iteration"] == 1
    cloned, trained = state["agent"]["policy"], after["agent"]["policy"]
    assert not torch.equal(cloned["gru.weight_hh_l0"], trained["gru.weight_hh_l0"])  # RL moved it
    assert torch.allclose(cloned["gru.weight_hh_l0"], trained["gru.weight_hh_l0"], atol=0.1)  # from there

    for bad, message in [
        ([*args, "--save-run", str(run_dir), *small], "is not empty"),
        (
            ["--config", str(ROOT / "configs" / "rl2_trpo_bandit_k5_n10.yaml")],
            "not an RL2 tabular-MDP config",
        ),
        ([*args, "no_such_key=1"], "no_such_key"),
    ]:
        with pytest.raises(SystemExit) as exited:
            imitation_main(bad)
        assert exited.value.code == 2 and message in capsys.readouterr().err
