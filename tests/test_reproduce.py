"""benchmarks/reproduce.py: trains a preset to the end, resumes an interrupted run, skips a
finished one, and prints the results row."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "sampler_backend=local",
    "meta_batch_size=2",
    "episodes_per_task=2",
    "horizon=20",
    "hidden_sizes=[8,8]",
    "eval_tasks=2",
    "eval_steps=1",
    "checkpoint_every=1",
]


def _reproduce(root, *extra):
    command = [
        sys.executable,
        "benchmarks/reproduce.py",
        "maml_trpo_halfcheetah_vel",
        "--root",
        str(root),
        *extra,
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_reproduce_trains_resumes_skips_and_reports(tmp_path):
    first = _reproduce(tmp_path, "--set", *TINY, "meta_iterations=2")
    assert first.returncode == 0, first.stderr
    assert "train.py --config" in first.stdout and "evaluate.py" in first.stdout
    row = first.stdout.strip().splitlines()[-1]
    assert row.startswith("| maml_trpo_halfcheetah_vel |") and "-129.53 / -78.57" in row  # the paper's row
    assert "(2 iterations)" in row

    # an interrupted run (its config asks for more iterations than it has) is resumed
    config = tmp_path / "maml_trpo_halfcheetah_vel" / "config.yaml"
    checkpoint_dir = tmp_path / "maml_trpo_halfcheetah_vel" / "checkpoints"
    for checkpoint in sorted(checkpoint_dir.glob("*.pt"))[1:]:
        checkpoint.unlink()  # back to iteration 1 of 2, as if killed
    second = _reproduce(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "train.py --resume" in second.stdout and "(2 iterations)" in second.stdout.strip().splitlines()[-1]
    assert config.exists()

    third = _reproduce(tmp_path)
    assert third.returncode == 0, third.stderr
    assert "training complete (2 iterations)" in third.stdout and "train.py" not in third.stdout


def test_reproduce_rl2_row_sets_the_trial_total_against_gittins_and_the_paper(tmp_path):
    """An RL2 bandit preset: the row gives each episode's mean, the trial total, Gittins's
    total on the same tasks, the paired difference, their ratio and the RL2 paper's value
    for that (n, k)."""
    import json

    name = "rl2_trpo_bandit_k5_n10"
    tiny = ["sampler_backend=local", "meta_batch_size=16", "rnn_hidden_size=8", "eval_tasks=50"]
    command = [sys.executable, "benchmarks/reproduce.py", name, "--root", str(tmp_path), "--set", *tiny]
    result = subprocess.run(
        [*command, "meta_iterations=1"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / name / "evaluation.json").read_text())
    total, gittins = summary["trial_total"], summary["baselines"]["Gittins"]
    cells = [cell.strip() for cell in result.stdout.strip().splitlines()[-1].split("|")[1:-1]]
    assert cells[0] == name
    assert cells[1] == f"{summary['steps'][0]['mean_return']:.2f}"  # one episode per bandit trial
    assert cells[2] == f"{total['mean']:.2f} ± {total['stderr']:.2f}"
    assert cells[3] == f"Gittins {gittins['mean']:.2f} ± {gittins['stderr']:.2f}"
    paired = gittins["agent_minus_this"]
    assert cells[4] == f"{paired['mean']:+.2f} ± {paired['stderr']:.2f}"
    assert float(cells[5]) == pytest.approx(total["mean"] / gittins["mean"], abs=1e-3)
    assert cells[6] == "6.7"  # the RL2 paper's (n, k) = (10, 5)
    assert cells[7] == f"{16 * 10:,}" and "(1 iterations)" in cells[8]


@pytest.mark.parametrize("name", ["maml_sgd_halfcheetah_vel"])
def test_reproduce_names_the_presets_for_an_unknown_one(tmp_path, name):
    result = subprocess.run(
        [sys.executable, "benchmarks/reproduce.py", name, "--root", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "maml_trpo_halfcheetah_vel" in result.stderr
