"""train.py and evaluate.py as subprocesses with tiny budgets, and their error messages."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "meta_iterations=2",
    "meta_batch_size=3",
    "episodes_per_task=4",
    "horizon=20",
    "hidden_sizes=[8,8]",
    "num_workers=2",
    "eval_tasks=5",
]


def run(*args, check=True):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    result = run("train.py", "--config", "configs/maml_trpo_navigation2d.yaml", *TINY, f"run_root={root}")
    runs = list(root.iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("Navigation2D-v0__maml_trpo__1__")
    assert "meta-iterations" in result.stderr  # the progress bar
    return runs[0]


def test_train_writes_config_events_csv_and_checkpoints(run_dir):
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["meta_batch_size"] == 3 and config["env_id"] == "metarl/Navigation2D-v0"
    assert list(run_dir.glob("events.out.tfevents.*"))
    with open(run_dir / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    for key in (
        "meta/return_pre_adapt",
        "meta/return_post_adapt",
        "losses/kl",
        "charts/env_steps",
        "charts/env_steps_per_s",
        "time/sample_s",
        "time/update_s",
    ):
        assert key in rows[0]
    assert int(rows[1]["charts/env_steps"]) == 2 * int(rows[0]["charts/env_steps"]) == 2 * 2 * 3 * 4 * 20
    assert (run_dir / "checkpoints" / "iteration_000002.pt").exists()

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    post = events.Scalars("meta/return_post_adapt")
    assert [e.step for e in post] == [480, 960]


def test_evaluate_reports_table_json_and_plot(run_dir):
    result = run("evaluate.py", str(run_dir))
    assert "gradient steps" in result.stdout and "mean return" in result.stdout
    summary = json.loads((run_dir / "evaluation.json").read_text())
    assert [row["step"] for row in summary["steps"]] == [0, 1, 2, 3]
    for row in summary["steps"]:
        assert len(row["task_returns"]) == 5
        assert row["mean_return"] == pytest.approx(sum(row["task_returns"]) / 5)
        assert row["stderr"] > 0
    after_one_step = [
        b - a for a, b in zip(summary["steps"][0]["task_returns"], summary["steps"][1]["task_returns"])
    ]
    assert summary["steps"][1]["change_from_first"]["mean"] == pytest.approx(sum(after_one_step) / 5)
    assert "change from first (paired)" in result.stdout
    assert len(summary["tasks"]) == 5
    for name in ("adaptation_curve.png", "training_curve.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_extends_a_run(run_dir, tmp_path):
    for args, message in [
        (["meta_iterations=2"], "already has 2 of meta_iterations=2; pass meta_iterations=N with N > 2"),
        (["meta_iteratons=3"], "unknown config key 'meta_iteratons' in the overrides"),
        (["inner_lr=0.5"], "cannot change \\['inner_lr'\\] when resuming"),
    ]:
        result = run("train.py", "--resume", str(run_dir), *args, check=False)
        assert result.returncode == 2 and re.search(message, result.stderr), result.stderr
    checkpoint = run_dir / "checkpoints" / "iteration_000002.pt"
    result = run("train.py", "--resume", str(checkpoint), "meta_iterations=3", "--no-progress")
    assert f"run directory: {run_dir}" in result.stdout
    with open(run_dir / "progress.csv", newline="") as handle:
        assert [int(float(r["charts/iteration"])) for r in csv.DictReader(handle)] == [1, 2, 3]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["meta_iterations"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inner_lrr=0.1"], "unknown config key 'inner_lrr'.*did you mean inner_lr.*train.py --help"),
        (
            ["env_id=metarl/Nope-v0"],
            "unknown env id 'metarl/Nope-v0'; task families: metarl/AntDir-v0, .*metarl/Navigation2D-v0",
        ),
        (["agent=ppo9000"], "unknown agent 'ppo9000'; choose from maml_ppo, maml_trpo"),
        (["meta_batch_size=many"], 'key "meta_batch_size": Expected a int. Got value: many'),
        (
            ["--config", "configs/none.yaml"],
            "config 'configs/none.yaml' is neither a file nor a preset; presets",
        ),
        (["seed"], "not of the form key=value"),
        (["activation=sigmoid"], "unknown activation 'sigmoid'; choose from \\['relu', 'tanh'\\]"),
        (["checkpoint_every=0"], "checkpoint_every must be >= 1, got 0"),
        (["discount=5"], "discount must be in \\[0, 1\\], got 5.0"),
        (["hidden_sizes=[a]"], '"hidden_sizes": Expected a int. Got value: a'),
        (["hidden_sizes=[]"], "hidden_sizes must be a non-empty list of positive ints"),
        (["env_kwargs={foo: 1}"], "cannot be built with env_kwargs=\\{'foo': 1\\}.*foo"),
        (["seed=-1"], "seed must be >= 0, got -1"),
        (["agent=maml_ppo", "outer_lr=fast"], '"outer_lr": Expected a float. Got value: fast'),
        (["init_from=runs/none", "meta_iterations=1"], "checkpoint runs/none does not exist"),
        (["agent=rl2_ppo", "entropy_coef_final=-0.1"], "entropy_coef_final must be >= 0 or null, got -0.1"),
        (
            ["entropy_coef=0.01"],
            "entropy_coef in the overrides: agent maml_trpo does not read it; its keys: env_id",
        ),
        (["outer_lr=0.1"], "outer_lr in the overrides: agent maml_trpo does not read it"),
        (
            ["--config", "tests/data/bad_preset.yaml"],
            "tests/data/bad_preset.yaml is not valid YAML: line 4, column 1: expected ',' or ']'",
        ),
    ],
)
def test_bad_input_gives_a_clear_error(args, message):
    result = run("train.py", *args, check=False)
    assert result.returncode == 2
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "iteration_000001.pt").write_bytes(b"not a checkpoint")
    for script in ("evaluate.py", "train.py"):
        args = [str(tmp_path / "run")] if script == "evaluate.py" else ["--resume", str(tmp_path / "run")]
        result = run(script, *args, check=False)
        assert result.returncode == 2
        assert "iteration_000001.pt is not a loadable metarl checkpoint: it is corrupt" in result.stderr
    result = run("evaluate.py", str(tmp_path / "missing"), check=False)
    assert result.returncode == 2 and "missing does not exist" in result.stderr


@pytest.mark.parametrize("signal_name, exit_code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_or_sigterm_saves_progress_and_tells_how_to_resume(tmp_path, signal_name, exit_code):
    """Ctrl-C (SIGINT) and kill (SIGTERM) both save the last completed iteration."""
    import os
    import signal
    import time

    process = subprocess.Popen(
        [
            sys.executable,
            "train.py",
            *TINY[1:],
            "meta_iterations=1000",
            "--run-dir",
            str(tmp_path / "run"),
            "--no-progress",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},  # SIGABRT prints every thread's stack
        # A shell without job control starts background jobs with SIGINT ignored, and Python
        # then never turns Ctrl-C into KeyboardInterrupt. CI run that way made this child ignore
        # the signal and train on; give it the terminal's default, as a foreground run has.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    progress = tmp_path / "run" / "progress.csv"

    def two_iterations_logged() -> bool:  # the header and two rows
        return progress.exists() and len(progress.read_text().splitlines()) >= 3

    # generous waits: on a loaded 2-core machine start-up (spawned workers importing torch)
    # alone can take a minute; the test is about what Ctrl-C does, not how fast
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not two_iterations_logged():
        time.sleep(0.2)
    if not two_iterations_logged():
        process.kill()
        pytest.fail(f"train.py logged no 2 iterations within 600 s: {process.communicate()[1]}")
    process.send_signal(getattr(signal, signal_name))
    try:
        _, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        _, stderr = process.communicate(timeout=60)
        pytest.fail(f"train.py did not exit within 300 s of {signal_name}; its threads then:\n{stderr}")
    assert process.returncode == exit_code, stderr
    assert f"python train.py --resume {tmp_path / 'run'}" in stderr and "Traceback" not in stderr
    from metarl.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "run")["iteration"] >= 2


def test_help_lists_every_config_key_with_its_type_default_and_doc():
    from metarl.config import field_names

    result = run("train.py", "--help")
    text = " ".join(result.stdout.split())
    for key in field_names():
        entry = text.rsplit(f"--{key}", 1)[1].split(" --")[0]  # the key's help: METAVAR doc (type: ...)
        doc, _, rest = entry.partition("(type: ")
        assert len(doc.split()[1:]) >= 2 and "default: " in rest, (key, entry)
    assert "key=value" in result.stdout


def test_a_runs_config_yaml_holds_the_keys_its_agent_reads(tmp_path):
    from metarl.registry import AGENTS

    run(
        "train.py",
        "--config",
        "rl2_trpo_bandit_k5_n10",
        "--run-dir",
        str(tmp_path / "run"),
        "meta_iterations=1",
        "meta_batch_size=8",
        "rnn_hidden_size=8",
        "sampler_backend=local",
    )
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert set(saved) == AGENTS["rl2_trpo"].reads
    assert "inner_lr" not in saved and "ppo_clip" not in saved and saved["value_epochs"] == 5


def test_layered_presets_resolve_their_bases_and_variants():
    from metarl.config import ConfigError, load_config, presets

    names = presets()
    assert len([n for n in names if n.startswith("rl2_") and ("bandit" in n or "mdp" in n)]) == 28
    special = load_config("rl2_trpo_bandit_k10_n100")  # base rl2_trpo < the family file < its variant
    assert (special.agent, special.env_kwargs, special.horizon, special.meta_batch_size) == (
        "rl2_trpo",
        {"num_arms": 10, "num_pulls": 100},
        100,
        200,
    )
    assert (special.gae_lambda, special.rnn_hidden_size, special.entropy_coef) == (0.95, 64, 0.03)
    assert special.curvature_fraction == 0.2 and special.rnn_reward_by_action
    plain = load_config("configs/rl2_ppo_tabular_mdp_n50.yaml")  # the old file path names it too
    assert (plain.agent, plain.episodes_per_trial, plain.gae_lambda, plain.rnn_state_action_inputs) == (
        "rl2_ppo",
        50,
        0.3,
        False,
    )
    with pytest.raises(ConfigError, match="holds variants: name one, e.g. rl2_trpo_bandit_k5_n10"):
        load_config("configs/rl2_trpo_bandit.yaml")
