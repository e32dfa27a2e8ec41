"""Every config preset loads, carries the paper's hyperparameters and runs a meta-iteration;
MAML-TRPO on HalfCheetahVel runs end to end through train.py and evaluate.py."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metarl.agent import build
from metarl.config import load_config, presets

ROOT = Path(__file__).resolve().parents[1]
LOCOMOTION = sorted((ROOT / "configs").glob("maml_*_[ah]*.yaml"))
TINY = [
    "sampler_backend=local",
    "meta_batch_size=2",
    "episodes_per_task=2",
    "horizon=10",
    "hidden_sizes=[16,16]",
]


def test_there_is_a_preset_per_locomotion_family_and_agent():
    families = ("halfcheetah_vel", "halfcheetah_dir", "ant_vel", "ant_dir", "ant_goal")
    assert {p.stem for p in LOCOMOTION} == {f"maml_{a}_{f}" for a in ("trpo", "ppo") for f in families}


@pytest.mark.parametrize("preset", LOCOMOTION, ids=lambda p: p.stem)
def test_locomotion_preset_has_the_paper_setup_and_runs(preset):
    config = load_config(preset)
    assert (config.meta_batch_size, config.horizon, config.inner_lr) == (40, 200, 0.1)
    assert config.agent == preset.stem.split("_")[0] + "_" + preset.stem.split("_")[1]
    if config.agent == "maml_trpo":
        assert config.max_kl == 0.01
    assert config.episodes_per_task == (40 if "ant_dir" in preset.stem else 20)
    assert config.hidden_sizes == [100, 100] and config.activation == "relu" and not config.first_order
    small = load_config(preset, TINY)
    agent, family, sampler = build(small)
    with sampler:
        metrics = agent.train_step(family.sample_tasks(2, np.random.default_rng(0)), 0)
    assert metrics["charts/iteration_env_steps"] > 0
    assert all(math.isfinite(value) for value in metrics.values())


def test_maml_trpo_on_halfcheetah_vel_end_to_end(tmp_path):
    overrides = [
        "meta_iterations=3",
        "meta_batch_size=4",
        "episodes_per_task=4",
        "horizon=50",
        "hidden_sizes=[32,32]",
        "num_workers=2",
        "eval_tasks=4",
        "eval_steps=2",
    ]
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "train.py",
        "--config",
        "configs/maml_trpo_halfcheetah_vel.yaml",
        *overrides,
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with open(run_dir / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and int(rows[-1]["charts/env_steps"]) == 3 * 2 * 4 * 4 * 50  # no early termination
    result = subprocess.run(
        [sys.executable, "evaluate.py", str(run_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "evaluation.json").read_text())
    assert summary["env_id"] == "metarl/HalfCheetahVel-v0"
    assert [row["step"] for row in summary["steps"]] == [0, 1, 2]
    assert all(
        len(row["task_returns"]) == 4 and math.isfinite(row["mean_return"]) for row in summary["steps"]
    )
    assert all(0.0 <= task["velocity"] <= 2.0 for task in summary["tasks"])


RL2_PRESETS = sorted(name for name in presets() if name.startswith("rl2_"))


def test_there_are_rl2_presets_for_the_papers_bandits_and_mdps():
    names = set(RL2_PRESETS)
    for agent in ("rl2_ppo", "rl2_trpo"):
        assert {f"{agent}_bandit_k{k}_n{n}" for k in (5, 10, 50) for n in (10, 100, 500)} <= names
        assert {f"{agent}_tabular_mdp_n{n}" for n in (10, 25, 50, 75, 100)} <= names
    assert "rl2_ppo_halfcheetah_vel" in names


@pytest.mark.parametrize("preset", RL2_PRESETS)
def test_rl2_preset_has_the_papers_setup_and_runs(preset):
    config = load_config(preset)
    assert config.agent in ("rl2_ppo", "rl2_trpo") and config.discount == 0.99
    if "bandit" in preset:
        k, n = (int(part[1:]) for part in preset.split("_")[-2:])
        assert config.env_kwargs == {"num_arms": k, "num_pulls": n} and config.horizon == n
        # the RL2-TRPO (100, 5) and (100, 10) presets depart from the paper on purpose (their
        # comments say how); the others keep its setup
        departs = preset.startswith("rl2_trpo") and n == 100 and k in (5, 10)
        expected = (1, 64, 0.95, True) if departs else (1, 256, 0.3, False)
        assert (
            config.episodes_per_trial,
            config.rnn_hidden_size,
            config.gae_lambda,
            config.rnn_privileged_value,
        ) == expected
        # only (100, 10) trains with an entropy bonus (falling to 0 over 3000 iterations)
        bonus = preset == "rl2_trpo_bandit_k10_n100"
        assert (config.entropy_coef, config.entropy_coef_final) == ((0.03, 0.0) if bonus else (0.0, None))
        assert config.meta_iterations == (3000 if bonus else 1500 if departs else 300)
    elif "tabular_mdp" in preset:
        assert config.episodes_per_trial == int(preset.split("_n")[-1]) and config.horizon == 10
        assert (config.rnn_hidden_size, config.gae_lambda) == (256, 0.3)
        # the n = 10 and 25 presets read per state-action rewards (not in the paper)
        departs = preset in {
            f"{agent}_tabular_mdp_n{n}" for agent in ("rl2_trpo", "rl2_ppo") for n in (10, 25)
        }
        assert config.rnn_state_action_inputs == departs
        # and heads that read the state (not in the paper either)
        assert config.rnn_observation_heads == departs
    elif "metaworld" in preset:
        assert (config.episodes_per_trial, config.horizon, config.meta_batch_size) == (10, 500, 20)
    else:
        assert config.episodes_per_trial == 2 and config.horizon == 200
    small = load_config(
        preset, ["sampler_backend=local", "meta_batch_size=3", "rnn_hidden_size=8", "horizon=5"]
    )
    agent, family, sampler = build(small)
    with sampler:
        metrics = agent.train_step(family.sample_tasks(3, np.random.default_rng(0)), 0)
    assert metrics["charts/iteration_env_steps"] == 3 * small.episodes_per_trial * 5
    assert all(math.isfinite(value) for value in metrics.values())


@pytest.mark.parametrize("kind", ["pretrained", "oracle"])
@pytest.mark.parametrize("family", ["halfcheetah_vel", "halfcheetah_dir"])
def test_pretrained_and_oracle_presets_train_without_adaptation_and_compare_with_their_paper_row(
    kind, family
):
    from metarl.evaluation import PAPER_ORACLE, PAPER_PRETRAINED, paper_reference

    config = load_config(ROOT / "configs" / f"{kind}_trpo_{family}.yaml")
    maml = load_config(ROOT / "configs" / f"maml_trpo_{family}.yaml")
    assert config.num_inner_steps == 0 and config.env_id == maml.env_id
    assert (config.meta_batch_size, config.episodes_per_task, config.max_kl) == (40, 20, 0.01)
    assert config.env_kwargs.get("observe_task", False) == (kind == "oracle")
    label, row = paper_reference(config)
    assert row == (PAPER_ORACLE if kind == "oracle" else PAPER_PRETRAINED)[config.env_id] and kind in label
    assert paper_reference(maml)[0] == "paper (MAML)"
    agent, family_env, sampler = build(load_config(ROOT / "configs" / f"{kind}_trpo_{family}.yaml", TINY))
    assert agent.policy.obs_dim == 17 + (kind == "oracle")
    with sampler:
        metrics = agent.train_step(family_env.sample_tasks(2, np.random.default_rng(0)), 0)
    assert metrics["charts/iteration_env_steps"] == 2 * 2 * 10  # one batch: no adaptation
    assert all(math.isfinite(value) for value in metrics.values())


@pytest.mark.parametrize("family_name", ["vel", "dir"])
def test_frameskip1_preset_is_the_maml_preset_at_the_papers_control_period(family_name):
    preset = ROOT / "configs" / f"frameskip1_maml_trpo_halfcheetah_{family_name}.yaml"
    maml = load_config(ROOT / "configs" / f"maml_trpo_halfcheetah_{family_name}.yaml")
    assert {**load_config(preset).to_dict(), "env_kwargs": {}} == {**maml.to_dict(), "env_kwargs": {}}
    agent, family, sampler = build(load_config(preset, TINY))
    sampler.close()
    assert family.dt == pytest.approx(0.01) and family.frame_skip == 1
