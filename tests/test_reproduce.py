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
