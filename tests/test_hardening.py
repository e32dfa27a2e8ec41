"""Faults and bad input end in one line on stderr with the right exit code, and lose nothing:
non-finite updates are refused, unwritable directories are found before any compute, failed
checkpoint writes keep the earlier ones, torn logs resume, hung workers are reported."""

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import metarl
from metarl import checkpoint as checkpoint_module
from metarl.agent import build
from metarl.api import Run
from metarl.checkpoint import CheckpointError, RunWriteError, load_checkpoint, save_checkpoint
from metarl.config import ConfigError, load_config
from metarl.optim import DivergenceWarning, NonFiniteError, checked_step, non_finite_entries
from metarl.training import DivergedError, resume, train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["meta_batch_size=2", "episodes_per_task=2", "horizon=10", "hidden_sizes=[8,8]", "eval_tasks=2"]
LOCAL = [*TINY, "sampler_backend=local"]


def cli(*args, timeout=300, **kwargs):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_one_line(result, code: int) -> str:
    """The one `error:` line of a failed command with exit code `code`, and no traceback."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    return lines[0]


def all_finite(run_dir: Path) -> bool:
    return all(
        not non_finite_entries(torch.load(p, weights_only=True))
        for p in (run_dir / "checkpoints").glob("*.pt")
    )


# ---- 1. non-finite updates -----------------------------------------------------------------
def test_a_diverging_adam_update_is_refused_and_the_run_stops_naming_agent_iteration_and_quantity(tmp_path):
    """MAML-PPO at outer_lr=1e6 produced NaN: every refused update keeps the parameters, and
    after max_refused_steps in a row the run stops; no checkpoint holds a NaN."""
    result = cli(
        "train.py",
        *TINY,
        "agent=maml_ppo",
        "outer_lr=1e6",
        "meta_iterations=6",
        "checkpoint_every=1",
        "max_refused_steps=2",
        "num_workers=1",
        "--no-progress",
        "--run-dir",
        str(tmp_path / "run"),
    )
    line = assert_one_line(result, 1)
    assert re.search(r"maml_ppo stopped at iteration \d: the MAML-PPO outer loss is not finite", line), line
    assert "2 updates in a row (max_refused_steps=2)" in line
    assert "warning: maml_ppo, iteration 1: the MAML-PPO outer loss is not finite" in result.stderr
    assert all_finite(tmp_path / "run")
    initial = metarl.load(tmp_path / "run", sampler_backend="local").policy.state_dict()
    fresh = build(load_config(None, [*LOCAL, "agent=maml_ppo"]))
    fresh[2].close()
    for key, value in fresh[0].policy.state_dict().items():  # the refused updates changed nothing
        assert torch.equal(initial[key], value), key


def test_checked_step_refuses_a_non_finite_loss_gradient_or_parameter():
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    with pytest.raises(NonFiniteError, match="the test loss is not finite"):
        checked_step(optimizer, (weight * float("nan")).sum(), "test loss")
    with pytest.raises(NonFiniteError, match="the gradient of the test loss is not finite"):
        checked_step(optimizer, torch.sqrt(weight - 1).sum(), "test loss")  # 0, d/dw = inf
    with pytest.raises(NonFiniteError, match="the parameters after the test loss's step"):
        checked_step(torch.optim.SGD([weight], lr=1e38), (weight * 1e38).sum(), "test loss")


def test_a_checkpoint_never_holds_a_non_finite_value(tmp_path):
    state = {"iteration": 1, "env_steps": 1, "agent": {"policy": {"w": torch.tensor([1.0, float("nan")])}}}
    with pytest.raises(NonFiniteError, match="agent.policy.w"):
        save_checkpoint(tmp_path, {**state, "config": {}})
    assert not list(tmp_path.iterdir())


def test_finite_divergence_of_the_rl2_value_is_a_warning(tmp_path):
    """RL2-PPO at outer_lr=1e6 stays finite (gradients are clipped) while its value loss
    explodes: a DivergenceWarning says so."""
    config = load_config(
        "rl2_ppo_bandit_k5_n10",
        [
            "meta_batch_size=8",
            "rnn_hidden_size=8",
            "meta_iterations=2",
            "outer_lr=1e6",
            "sampler_backend=local",
        ],
    )
    with pytest.warns(DivergenceWarning, match="the value fit is diverging; lower outer_lr"):
        train(config, tmp_path / "run", progress=False)


# ---- 2, 3. unwritable directories, failed checkpoint writes -----------------------------------
def _without_root_override() -> list[str]:
    """A command prefix under which permission bits hold: as root, setpriv drops the
    capabilities that let root write anywhere (chmod alone does not stop root)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a directory read-only for this test")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize("read_only", ["checkpoints", "run_root"])
def test_an_unwritable_run_directory_is_an_error_before_any_compute(tmp_path, read_only):
    if read_only == "checkpoints":
        run_dir = tmp_path / "run"
        (run_dir / "checkpoints").mkdir(parents=True)
        target, args = run_dir / "checkpoints", ["--run-dir", str(run_dir)]
        os.chmod(run_dir, 0o555)
    else:
        target = tmp_path / "runs"
        target.mkdir()
        args = [f"run_root={target}"]
    os.chmod(target, 0o555)
    started = time.monotonic()
    result = subprocess.run(
        [
            *_without_root_override(),
            sys.executable,
            "train.py",
            *TINY,
            "meta_iterations=50",
            "--no-progress",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = assert_one_line(result, 1)
    assert f"cannot write into {target} (Permission denied)" in line, line
    assert time.monotonic() - started < 60  # no training happened first
    assert not list(tmp_path.rglob("progress.csv"))


def _failing_disk(monkeypatch, fail_from: int):
    """Writes of checkpoint files fail with ENOSPC from the `fail_from`-th on, after half the
    bytes are written (a full disk)."""
    real_open, calls = open, []

    class HalfWriter:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def fake_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if str(path).endswith(".pt.tmp") and "w" in mode:
            calls.append(path)
            if len(calls) >= fail_from:
                return HalfWriter(handle)
        return handle

    monkeypatch.setattr(checkpoint_module, "open", fake_open, raising=False)


def test_a_full_disk_keeps_the_previous_checkpoint_and_the_run_resumes(tmp_path, monkeypatch):
    config = load_config(None, [*LOCAL, "meta_iterations=4", "checkpoint_every=1"])
    _failing_disk(monkeypatch, fail_from=3)
    with pytest.raises(
        RunWriteError, match=r"could not write checkpoint .*iteration_000003.pt \(No space left"
    ):
        train(config, tmp_path / "run", progress=False)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["iteration_000001.pt", "iteration_000002.pt"]
    monkeypatch.undo()  # space freed
    state, resumed_config, run_dir = resume(tmp_path / "run")
    assert state["iteration"] == 2
    train(resumed_config, run_dir, state, progress=False)
    train(config, tmp_path / "uninterrupted", progress=False)
    resumed, uninterrupted = (
        load_checkpoint(d)["agent"]["policy"] for d in (run_dir, tmp_path / "uninterrupted")
    )
    for key, value in uninterrupted.items():
        assert torch.equal(resumed[key], value), key


# ---- 4. torn logs --------------------------------------------------------------------------
def test_resume_tolerates_a_torn_last_row_of_progress_csv(tmp_path):
    run_dir = train(
        load_config(None, [*LOCAL, "meta_iterations=2", "checkpoint_every=1"]),
        tmp_path / "run",
        progress=False,
    )
    progress = run_dir / "progress.csv"
    last = progress.read_text().splitlines()[-1]
    with progress.open("a") as handle:
        handle.write(last[:15])  # a row cut short, no newline
    state, config, _ = resume(run_dir, ["meta_iterations=3"])
    train(config, run_dir, state, progress=False)
    rows = Run(run_dir, config).metrics
    assert [row["charts/iteration"] for row in rows] == [1.0, 2.0, 3.0]


# ---- 5. hung and killed workers ------------------------------------------------------------
@pytest.mark.parametrize("fault", ["SIGSTOP", "SIGKILL"])
def test_a_hung_or_killed_worker_is_one_line_with_the_resume_command(tmp_path, fault):
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "train.py",
            *TINY,
            "meta_iterations=10000",
            "num_workers=2",
            "worker_timeout_s=2",
            "checkpoint_every=1",
            "--no-progress",
            "--run-dir",
            str(run_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not list((run_dir / "checkpoints").glob("*.pt")) and time.monotonic() < deadline:
        time.sleep(0.1)
    children = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
    ).stdout.split()
    workers = [pid for pid in children if "spawn" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert workers, children
    os.kill(int(workers[0]), getattr(signal, fault))
    stopped = time.monotonic()
    _, stderr = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, "", stderr)
    line = assert_one_line(result, 1)
    assert re.search(r"sampler worker \d failed while sampling on tasks", line), line
    assert f"resume with python train.py --resume {run_dir}" in line
    if fault == "SIGSTOP":
        assert "no answer within" in line and time.monotonic() - stopped < 30
    else:
        assert "killed by SIGKILL" in line
    assert load_checkpoint(run_dir)["iteration"] >= 1


# ---- 6. oversubscription, the interrupt message ---------------------------------------------
def test_more_workers_than_cores_is_refused_unless_allowed():
    cores = len(os.sched_getaffinity(0))
    with pytest.raises(
        ConfigError, match=f"num_workers={cores + 1} is more than this machine's {cores} cores"
    ):
        load_config(None, [f"num_workers={cores + 1}"])
    assert (
        load_config(None, [f"num_workers={cores + 1}", "allow_oversubscription=true"]).num_workers
        == cores + 1
    )


def test_an_interrupt_before_any_checkpoint_says_nothing_was_saved(tmp_path):
    from metarl.cli.train import saved_progress

    assert (
        saved_progress(tmp_path)
        == f"nothing was saved in {tmp_path} (no iteration had completed): start it again"
    )
    save_checkpoint(tmp_path / "checkpoints", {"iteration": 3, "env_steps": 1, "agent": {}, "config": {}})
    saved = tmp_path / "checkpoints" / "iteration_000003.pt"
    assert saved_progress(tmp_path) == f"{saved} is saved: resume with python train.py --resume {tmp_path}"


# ---- 7, 8. YAML errors, non-finite values ----------------------------------------------------
def test_yaml_errors_name_the_file_or_override_and_the_place(tmp_path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("agent: maml_trpo\nmeta_iterations: [1,\n")
    with pytest.raises(ConfigError, match=f"{preset} is not valid YAML: line 3, column 1: ") as err:
        load_config(preset)
    assert "<unicode string>" not in str(err.value)
    with pytest.raises(
        ConfigError, match=r"override 'hidden_sizes=\[64,': its value is not valid YAML \(line 1"
    ) as err:
        load_config(None, ["hidden_sizes=[64,"])
    assert "<unicode string>" not in str(err.value)


@pytest.mark.parametrize(
    "override", ["inner_lr=.inf", "max_kl=.nan", "discount=-.inf", "eval_inner_lrs=[0.1, .inf]"]
)
def test_float_keys_reject_inf_and_nan(override):
    with pytest.raises(ConfigError, match="finite|positive step sizes|must be"):
        load_config(None, [override])


# ---- 9. evaluate.py's options --------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("hardening") / "run"
    return train(
        load_config(None, [*LOCAL, "meta_iterations=2", "checkpoint_every=1"]), run_dir, progress=False
    )


@pytest.mark.parametrize(
    "option, message",
    [
        (["--steps", "-1"], "eval_steps must be >= 0, got -1"),
        (["--inner-lrs", "abc"], "'abc' is not valid for eval_inner_lrs"),
        (["--inner-lrs", "-0.1"], "eval_inner_lrs must be a non-empty list of positive step sizes"),
        (["--tasks", "0"], "eval_tasks must be >= 1, got 0"),
    ],
)
def test_evaluate_options_are_validated_like_config_keys(trained, option, message):
    line = assert_one_line(cli("evaluate.py", str(trained), *option, "--backend", "local"), 2)
    assert message in line and "see evaluate.py --help" in line


# ---- 10. corrupt checkpoints ---------------------------------------------------------------
def test_a_corrupt_checkpoint_names_the_file_and_the_ones_that_load(trained, tmp_path):
    run_dir = Path(shutil.copytree(trained, tmp_path / "run"))
    latest = run_dir / "checkpoints" / "iteration_000002.pt"
    latest.write_bytes(latest.read_bytes()[:100])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(run_dir)
    message = str(err.value)
    assert message.startswith(f"{latest} is not a loadable metarl checkpoint: it is corrupt")
    assert f"these checkpoints in {latest.parent} load: iteration_000001.pt" in message
    assert "weights_only" not in message
    line = assert_one_line(cli("evaluate.py", str(run_dir)), 2)
    assert "iteration_000001.pt" in line and "weights_only" not in line
    debug = cli("evaluate.py", str(run_dir), "--debug")
    assert debug.returncode == 2 and "Traceback" in debug.stderr  # asked for


def test_a_pickled_object_is_refused_without_advice_to_load_it_unsafely(tmp_path):
    marker = tmp_path / "code_ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "checkpoints" / "iteration_000001.pt"
    path.parent.mkdir()
    torch.save({"format_version": 1, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="holds objects other than tensors and plain values") as err:
        load_checkpoint(path)
    assert "weights_only=False" not in str(err.value) and not marker.exists()


def test_a_diverged_run_stops_in_process_with_diverged_error(tmp_path):
    config = load_config(
        None, [*LOCAL, "agent=maml_ppo", "outer_lr=1e6", "meta_iterations=5", "max_refused_steps=1"]
    )
    with pytest.raises(
        DivergedError, match="maml_ppo stopped at iteration 1: .* no checkpoint was written before it"
    ):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()
