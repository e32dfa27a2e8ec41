"""Re-run the fault and bad-input cases of ``train.py`` and ``evaluate.py``; print a table.

    .venv/bin/python research/fault_cases.py                # every case (about 10 minutes)
    .venv/bin/python research/fault_cases.py --only 14,16   # some cases (ranges too: 1-13)
    .venv/bin/python research/fault_cases.py --list         # the cases, without running them

Each case runs the command-line tools as subprocesses (``sys.executable``, from the
repository root, ``--no-progress``), in a temporary directory of its own that is removed
afterwards, with tiny configs (2 tasks of 2 episodes of 10 steps, one worker) and at low
priority (nice 10), one process at a time. It prints, as a markdown table: the command's exit
code, its number of non-empty stderr lines, whether stderr holds a Python traceback, its last
stderr line, and a verdict by the case's own expectation: ``holds``, ``fails``, ``timeout``
(a command ran past --timeout) or ``skipped``. Where a case runs several commands, the row
shows the one it judges; the note says what else it saw.

The expectation of an error: exactly one relevant stderr line, which begins ``error:``, no
traceback, exit code 2 for bad input (config keys and values, options, YAML, unknown ids, a
corrupt checkpoint given as input) and 1 for a runtime failure (non-finite training,
unwritable directories, a full disk, a failed sampler worker). Relevant lines are the
non-empty ones that are not warnings (Python's, gymnasium's ``WARN:``, MuJoCo's) or progress
bars. A traceback appears only with ``--debug`` or ``METARL_DEBUG=1`` (case 28; the
variable is removed from every other case's environment).

Signals: kill -9 goes to the run's whole process group (the main process and its sampler
workers die together), SIGINT too (as Ctrl-C from a terminal), SIGTERM to the main process
alone (as ``kill <pid>``). The unwritable-directory cases (16, 17) need a process that
permissions stop: as root they run train.py as user nobody, or, where nobody cannot run this
interpreter (one under /root), as root with every capability dropped (``setpriv
--bounding-set=-all``), for which a directory of mode 555 is read-only too. Case 18 mounts a
300 KiB tmpfs (root only; skipped otherwise) and unmounts it afterwards.
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
TRACEBACK = "Traceback (most recent call last)"
LAST_LINE_CHARS = 160
WORKER_FAULT_LIMIT_S = 35.0  # a stopped or killed worker is reported within ~30 s
QUICK_EXIT_S = 20.0  # case 22: a refused num_workers exits before starting workers

# the tiny MAML run (default env metarl/Navigation2D-v0, agent maml_trpo)
TINY: dict[str, object] = {
    "meta_iterations": 2,
    "meta_batch_size": 2,
    "episodes_per_task": 2,
    "horizon": 10,
    "num_workers": 1,
    "checkpoint_every": 1,
}
# RL2-PPO on 5-armed bandits of 10 pulls, shrunk (the preset samples 2000 trials a step)
TINY_RL2: dict[str, object] = {
    "meta_iterations": 6,
    "meta_batch_size": 8,
    "rnn_hidden_size": 32,
    "num_workers": 1,
    "checkpoint_every": 1,
}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_WARNING = re.compile(r"^warning:|\b\w*Warning\b|\bWARN:|MuJoCo|mujoco")
_PROGRESS = re.compile(r"\d+%\|.*\||\bit/s\]|\bs/it\]")


class Settings:
    timeout_s: float = 120.0  # per command (--timeout)


def overrides(base: dict[str, object] | None = None, **changes: object) -> list[str]:
    """``key=value`` tokens of `base` (default `TINY`) with `changes` applied."""
    merged = {**(TINY if base is None else base), **changes}
    return [f"{key}={value}" for key, value in merged.items()]


# --- processes ---------------------------------------------------------------------------


@dataclass
class Proc:
    """A finished command: exit code (None: killed at the timeout), output, duration."""

    argv: list[str]
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    leftovers: int = 0  # processes of its group still alive after it ended

    @property
    def timed_out(self) -> bool:
        return self.rc is None


@dataclass
class Started:
    """A running command; its output goes to files (no pipe to fill while it runs)."""

    argv: list[str]
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    began: float

    @property
    def pid(self) -> int:
        return self.popen.pid


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of `pid`, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
    return int(fields[1]), int(fields[2])


def _all_pids() -> Iterable[int]:
    return (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())


def group_members(pgid: int) -> list[int]:
    return [pid for pid in _all_pids() if (stat := _proc_stat(pid)) is not None and stat[1] == pgid]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def sampler_workers(pid: int) -> list[int]:
    """The sampler worker processes (multiprocessing spawn children, not its resource
    tracker) of process `pid`, in start order."""
    children = [child for child in _all_pids() if (stat := _proc_stat(child)) is not None and stat[0] == pid]
    return sorted(child for child in children if "spawn_main" in cmdline(child))


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def kill_group(pgid: int) -> None:
    """SIGCONT then SIGKILL every process of group `pgid` (one this script started)."""
    for pid in group_members(pgid):
        _signal(pid, signal.SIGCONT)
        _signal(pid, signal.SIGKILL)


def _lower_priority() -> None:
    os.nice(10)  # leave the CPU to whatever else runs on this machine


@functools.cache
def unprivileged() -> tuple[list[str], dict[str, Any], str] | None:
    """(command prefix, Popen keywords, description) that make a process subject to file
    permissions, or None if there is no way: nothing as a user, user nobody as root, or root
    without capabilities where nobody cannot run this interpreter."""
    if os.geteuid() != 0:
        return [], {}, "as a user"
    as_nobody: dict[str, Any] = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import metarl"], cwd=ROOT, capture_output=True, timeout=60, **as_nobody
        )
        if probe.returncode == 0:
            return [], as_nobody, "as nobody"
    except (OSError, subprocess.SubprocessError):
        pass
    if shutil.which("setpriv"):
        return ["setpriv", "--bounding-set=-all", "--"], {}, "as root without capabilities"
    return None


class Sandbox:
    """One case's temporary directory, the processes it started and the tmpfs it mounted;
    `close` kills, unmounts and removes them."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="metarl-fault-"))
        self.run = self.dir / "run"
        self._count = 0
        self._groups: list[int] = []
        self.mounts: list[Path] = []

    def start(
        self,
        tool: str,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        unprivileged_as: tuple[list[str], dict[str, Any], str] | None = None,
    ) -> Started:
        """Start ``python <tool> <args>`` in its own process group (session)."""
        prefix, keywords = (unprivileged_as[0], unprivileged_as[1]) if unprivileged_as else ([], {})
        argv = [*prefix, sys.executable, tool, *args]
        environment = {key: value for key, value in os.environ.items() if key != "METARL_DEBUG"}
        environment.update(env or {})
        self._count += 1
        logs = self.dir / "logs"
        logs.mkdir(exist_ok=True)
        logs.chmod(0o777)  # an unprivileged process writes nothing here; its stdout is opened here
        stdout, stderr = logs / f"{self._count}.out", logs / f"{self._count}.err"
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_lower_priority,
                **keywords,
            )
        self._groups.append(popen.pid)
        return Started(argv, popen, stdout, stderr, time.monotonic())

    def finish(self, started: Started) -> Proc:
        """Wait for `started` until the timeout (counted from its start); kill it past it."""
        remaining = Settings.timeout_s - (time.monotonic() - started.began)
        try:
            rc: int | None = started.popen.wait(timeout=max(remaining, 0.1))
        except subprocess.TimeoutExpired:
            kill_group(started.pid)
            started.popen.wait()
            rc = None
        seconds = time.monotonic() - started.began
        leftovers: list[int] = []
        for _ in range(20):  # workers of a killed main process exit on their own, shortly
            leftovers = group_members(started.pid)
            if not leftovers:
                break
            time.sleep(0.1)
        kill_group(started.pid)
        read = lambda path: path.read_text(errors="replace")  # noqa: E731
        return Proc(started.argv, rc, read(started.stdout), read(started.stderr), seconds, len(leftovers))

    def tool(self, tool: str, args: Sequence[str], **kwargs: Any) -> Proc:
        return self.finish(self.start(tool, args, **kwargs))

    def train(self, args: Sequence[str], **kwargs: Any) -> Proc:
        return self.tool("train.py", ["--no-progress", *args], **kwargs)

    def start_train(self, args: Sequence[str], **kwargs: Any) -> Started:
        return self.start("train.py", ["--no-progress", *args], **kwargs)

    def evaluate(self, args: Sequence[str], **kwargs: Any) -> Proc:
        return self.tool("evaluate.py", args, **kwargs)

    def run_args(self, base: dict[str, object] | None = None, **changes: object) -> list[str]:
        """``--run-dir <tmp>/run`` and the overrides."""
        return ["--run-dir", str(self.run), *overrides(base, **changes)]

    def root_args(self, base: dict[str, object] | None = None, **changes: object) -> list[str]:
        """``run_root=<tmp>/runs`` and the overrides (for commands that should not start)."""
        return [*overrides(base, **changes), f"run_root={self.dir / 'runs'}"]

    def close(self) -> None:
        for pgid in self._groups:
            kill_group(pgid)
        mounted = []
        for mount in self.mounts:
            if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
                if subprocess.run(["umount", "-l", str(mount)], capture_output=True).returncode != 0:
                    mounted.append(mount)
        if mounted:
            print(f"warning: could not unmount {mounted}; left {self.dir}", file=sys.stderr)
            return
        for directory, _, _ in os.walk(self.dir):
            os.chmod(directory, 0o755)  # the read-only directories of cases 16 and 17
        shutil.rmtree(self.dir, ignore_errors=True)


def checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("iteration_*.pt"))


def wait_until(condition: Callable[[], bool], started: Started) -> bool:
    """Poll `condition` until it holds (True), or the process ends or times out (False)."""
    while time.monotonic() - started.began < Settings.timeout_s:
        if condition():
            return True
        if started.popen.poll() is not None:
            return condition()
        time.sleep(0.05)
    return False


class SetupFailed(Exception):
    """A command a case needs before the one it judges did not do its part."""

    def __init__(self, what: str, proc: Proc | None = None) -> None:
        super().__init__(what)
        self.what, self.proc = what, proc


def require_success(proc: Proc, what: str) -> Proc:
    if proc.rc != 0:
        raise SetupFailed(what, proc)
    return proc


# --- stderr and expectations ---------------------------------------------------------------


def stderr_lines(stderr: str) -> list[str]:
    """Non-empty lines, without colour codes (a progress bar's \\r-separated states apart)."""
    lines = (_ANSI.sub("", line).rstrip() for line in re.split(r"[\r\n]", stderr))
    return [line for line in lines if line.strip()]


def relevant_lines(stderr: str) -> list[str]:
    """Non-empty stderr lines that are not warnings (metarl's ``warning:`` lines, Python's
    with their indented source line, gymnasium's, MuJoCo's) nor progress bars."""
    relevant, after_warning = [], False
    for line in stderr_lines(stderr):
        if _WARNING.search(line) and not line.startswith("error:"):
            after_warning = True
            continue
        if (after_warning and line[:1].isspace()) or _PROGRESS.search(line):
            continue
        after_warning = False
        relevant.append(line)
    return relevant


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr_lines(stderr) if line.startswith("warning:")]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr_lines(stderr) if line.startswith("error:")]


def expect_error(
    proc: Proc,
    rc: int,
    contains: Sequence[str] = (),
    absent: Sequence[str] = (),
    patterns: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """What is wrong with `proc` as an error of exit code `rc`: one relevant stderr line,
    beginning ``error:``, no traceback, holding `contains` and none of `absent` and matching
    each (regex, description) of `patterns` (case-insensitive). Empty: it holds."""
    problems = []
    if proc.rc != rc:
        problems.append(f"rc {proc.rc}, expected {rc}")
    traceback = TRACEBACK in proc.stderr
    if traceback:
        problems.append("traceback")
    errors = error_lines(proc.stderr)
    if len(errors) != 1:
        problems.append(f"{len(errors)} 'error:' lines")
    others = [line for line in relevant_lines(proc.stderr) if not line.startswith("error:")]
    if others and not traceback:
        problems.append(f"{len(others)} other stderr line(s)")
    line = errors[-1] if errors else ""
    problems += [f"error line lacks {text!r}" for text in contains if text not in line]
    problems += [f"error line holds {text!r}" for text in absent if text in line]
    problems += [
        f"error line does not name {what}" for pattern, what in patterns if not re.search(pattern, line, re.I)
    ]
    return problems


def expect_success(proc: Proc) -> list[str]:
    return [] if proc.rc == 0 else [f"rc {proc.rc}, expected 0"]


# --- checkpoints ---------------------------------------------------------------------------


def load_state(path: Path) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def final_policy(run: Path, iteration: int) -> dict[str, Any]:
    path = run / "checkpoints" / f"iteration_{iteration:06d}.pt"
    if not path.exists():
        raise SetupFailed(f"no {path.name} in {run}")
    return load_state(path)["agent"]["policy"]


def tensor_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    import torch

    if a.keys() != b.keys():
        return [f"policy keys differ: {sorted(a)} vs {sorted(b)}"]
    differing = [key for key in a if not torch.equal(a[key], b[key])]
    return [f"policy tensors differ from the reference run's: {', '.join(differing)}"] if differing else []


def non_finite(value: Any, where: str = "") -> list[str]:
    """Paths of the floating-point tensors in `value` (nested dicts, lists) that are not finite."""
    import torch

    if isinstance(value, torch.Tensor):
        return [where] if value.is_floating_point() and not torch.isfinite(value).all() else []
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in non_finite(item, f"{where}/{key}")]
    if isinstance(value, (list, tuple)):
        return [found for index, item in enumerate(value) for found in non_finite(item, f"{where}/{index}")]
    return []


def checkpoint_problems(run: Path, finite: bool = False) -> list[str]:
    """Checkpoints of `run` that do not load (weights_only=True), or with `finite` hold
    non-finite tensors."""
    problems = []
    for path in checkpoints(run):
        try:
            state = load_state(path)
        except Exception as err:
            problems.append(f"{path.name} does not load: {type(err).__name__}: {str(err)[:80]}")
            continue
        if finite and (bad := non_finite(state)):
            problems.append(f"{path.name} holds non-finite tensors: {', '.join(bad[:3])}")
    return problems


_REFERENCE: dict[str, Any] = {}


def reference_policy() -> dict[str, Any]:
    """The final policy of an uninterrupted tiny run of 6 iterations (run once, in a sandbox
    of its own)."""
    if not _REFERENCE:
        box = Sandbox()
        try:
            require_success(box.train(box.run_args(meta_iterations=6)), "the uninterrupted reference run")
            _REFERENCE.update(final_policy(box.run, 6))
        finally:
            box.close()
    return _REFERENCE


def train_one(box: Sandbox, **changes: object) -> Proc:
    return require_success(box.train(box.run_args(**{"meta_iterations": 1, **changes})), "training")


# --- cases ---------------------------------------------------------------------------------


@dataclass
class Check:
    """One judged command of a case (one table row): the command and what went wrong."""

    proc: Proc | None
    problems: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    suffix: str = ""  # a, b, ... where a case judges several commands
    skipped: str = ""


def bad_input(
    *args: str,
    contains: Sequence[str] = (),
    absent: Sequence[str] = (),
    patterns: Sequence[tuple[str, str]] = (),
) -> CaseRun:
    """A case: train.py with `args` (its ``key=value`` ones replace the tiny run's) exits 2
    with one error line."""

    def case(box: Sandbox) -> list[Check]:
        options = [a for a in args if a.startswith("-") or "=" not in a]
        changes = dict(a.split("=", 1) for a in args if a not in options)
        proc = box.train([*options, *box.root_args(**changes)])
        return [Check(proc, expect_error(proc, 2, contains, absent, patterns))]

    return case


def corrupt_checkpoint(box: Sandbox) -> list[Check]:
    train_one(box)
    checkpoints(box.run)[-1].write_bytes(random.Random(6).randbytes(4096))
    proc = box.evaluate([str(box.run)])
    return [Check(proc, expect_error(proc, 2))]


class _Touch:
    """Unpickles into ``Path(marker).touch()``: what a malicious checkpoint could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return Path.touch, (self.marker,)


def malicious_checkpoint(box: Sandbox) -> list[Check]:
    import torch

    marker = box.dir / "pwned"
    path = box.dir / "evil.pt"
    torch.save({"format_version": 1, "iteration": 1, "payload": _Touch(marker)}, path)
    proc = box.evaluate([str(path)])
    problems = expect_error(proc, 2)
    if marker.exists():
        problems.append("the pickled code ran (marker file created)")
    return [Check(proc, problems)]


CaseRun = Callable[[Sandbox], list[Check]]


def interrupted_resume(signum: int, to_group: bool, expected_rc: int | None) -> CaseRun:
    """A case: stop a 6-iteration run with `signum` after its first checkpoint, resume it;
    the final policy equals an uninterrupted run's."""

    def case(box: Sandbox) -> list[Check]:
        reference = reference_policy()
        started = box.start_train(box.run_args(meta_iterations=6))
        info = []
        if not wait_until(lambda: bool(checkpoints(box.run)), started):
            raise SetupFailed("a first checkpoint", box.finish(started))
        if started.popen.poll() is None:
            (os.killpg if to_group else os.kill)(started.pid, signum)
        else:
            info.append("the run ended before the signal")
        stopped = box.finish(started)
        info.append(f"stopped run: rc {stopped.rc}, {len(checkpoints(box.run))} checkpoint(s)")
        problems = []
        if expected_rc is not None and stopped.rc != expected_rc:
            problems.append(f"stopped run rc {stopped.rc}, expected {expected_rc}")
        if stopped.leftovers:
            problems.append(f"{stopped.leftovers} process(es) of the stopped run left running")
        proc = box.train(["--resume", str(box.run)])
        problems += expect_success(proc)
        if proc.rc == 0:
            problems += tensor_differences(final_policy(box.run, 6), reference)
        return [Check(proc, problems, info)]

    return case


def repeated_kills(box: Sandbox) -> list[Check]:
    rng, iterations, kills, problems = random.Random(11), 12, [], []
    for attempt in range(3):
        before = len(checkpoints(box.run))
        args = ["--resume", str(box.run)] if attempt else box.run_args(meta_iterations=iterations)
        started = box.start_train(args)
        if not wait_until(lambda n=before: len(checkpoints(box.run)) > n, started):
            raise SetupFailed(f"a new checkpoint before kill {attempt + 1}", box.finish(started))
        time.sleep(rng.uniform(0.0, 1.5))
        if started.popen.poll() is None:
            os.killpg(started.pid, signal.SIGKILL)
            kills.append(len(checkpoints(box.run)))
        box.finish(started)
        problems += checkpoint_problems(box.run)
        if len(checkpoints(box.run)) >= iterations:
            break
    info = [f"killed after checkpoints {kills}"]
    if len(checkpoints(box.run)) < iterations:
        proc = box.train(["--resume", str(box.run)])
        problems = expect_success(proc) + problems + checkpoint_problems(box.run)
    else:
        proc, info = None, [*info, "the run completed before the third kill"]
    leftover = list((box.run / "checkpoints").glob("*.tmp"))
    info.append(f"{len(checkpoints(box.run))} checkpoints load-checked, {len(leftover)} *.tmp left")
    return [Check(proc, sorted(set(problems), key=problems.index), info)]


def worker_counts(box: Sandbox) -> list[Check]:
    reference = reference_policy()  # num_workers=1
    proc = box.train(box.run_args(meta_iterations=6, num_workers=2))
    problems = expect_success(proc)
    if proc.rc == 0:
        problems += tensor_differences(final_policy(box.run, 6), reference)
    return [Check(proc, problems)]


def resume_without_checkpoint(box: Sandbox) -> list[Check]:
    empty = box.dir / "empty"
    empty.mkdir()
    proc = box.train(["--resume", str(empty)])
    return [Check(proc, expect_error(proc, 2))]


FAMILIES = ("Navigation2D", "the task families")
UNICODE = "<unicode string>"
NON_FINITE = (r"non-finite|not finite|\bnan\b|\binf", "the non-finite quantity")


def non_finite_maml_ppo(box: Sandbox) -> list[Check]:
    args = box.run_args(agent="maml_ppo", outer_lr="1e6", meta_iterations=6, max_refused_steps=2)
    proc = box.train(args)
    problems = expect_error(
        proc, 1, contains=["maml_ppo"], patterns=[(r"iteration", "the iteration"), NON_FINITE]
    )
    problems += checkpoint_problems(box.run, finite=True)
    return [Check(proc, problems, [f"{len(checkpoints(box.run))} checkpoint(s)"])]


def non_finite_rl2_ppo(box: Sandbox) -> list[Check]:
    args = ["--config", "rl2_ppo_bandit_k5_n10", *box.run_args(TINY_RL2, outer_lr="1e6")]
    proc = box.train(args)
    if proc.rc == 0:
        problems = [] if "diverg" in proc.stderr.lower() else ["rc 0 without a warning of divergence"]
    else:
        problems = expect_error(proc, 1, contains=["rl2_ppo"], patterns=[(r"iteration", "the iteration")])
    problems += checkpoint_problems(box.run, finite=True)
    return [Check(proc, problems, [f"{len(checkpoints(box.run))} checkpoint(s)"])]


def no_iteration(proc: Proc, run: Path) -> list[str]:
    """Problems if `proc` completed a meta-iteration in `run`."""
    problems = ["stdout says done"] if "done in" in proc.stdout else []
    progress = run / "progress.csv"
    if progress.exists() and len(progress.read_text().splitlines()) > 1:
        problems.append("progress.csv has rows: an iteration ran")
    return problems


def read_only_checkpoints(box: Sandbox) -> list[Check]:
    how = unprivileged()
    if how is None:
        return [Check(None, skipped="skipped (no unprivileged user)")]
    box.dir.chmod(0o755)
    (box.run / "checkpoints").mkdir(parents=True)
    for directory in (box.run / "checkpoints", box.run):
        directory.chmod(0o555)
    proc = box.train(box.run_args(), unprivileged_as=how)
    problems = expect_error(proc, 1, contains=[str(box.run)]) + no_iteration(proc, box.run)
    line = (error_lines(proc.stderr) or [""])[-1]
    names = "checkpoints/" if str(box.run / "checkpoints") in line else "the run directory"
    return [Check(proc, problems, [f"ran {how[2]}", f"the line names {names}"])]


def read_only_run_root(box: Sandbox) -> list[Check]:
    how = unprivileged()
    if how is None:
        return [Check(None, skipped="skipped (no unprivileged user)")]
    box.dir.chmod(0o755)
    runs = box.dir / "runs"
    runs.mkdir()
    runs.chmod(0o555)
    proc = box.train(box.root_args(), unprivileged_as=how)
    return [Check(proc, expect_error(proc, 1, contains=[str(runs)]), [f"ran {how[2]}"])]


def disk_full(box: Sandbox) -> list[Check]:
    small = box.dir / "small"
    small.mkdir()
    if os.geteuid() != 0:
        return [Check(None, skipped="skipped (no tmpfs)")]
    mount = ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(small)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        return [Check(None, skipped="skipped (no tmpfs)")]
    box.mounts.append(small)
    run = small / "run"
    proc = box.train(["--run-dir", str(run), *overrides(hidden_sizes="[512,512]")])
    problems = expect_error(proc, 1, contains=[str(small), "No space left"])
    leftover = list((run / "checkpoints").glob("*.pt.tmp"))
    if leftover:
        problems.append(f"left {', '.join(p.name for p in leftover)}")
    return [Check(proc, problems, [f"{len(checkpoints(run))} checkpoint(s) fit"])]


def torn_progress_row(box: Sandbox) -> list[Check]:
    require_success(box.train(box.run_args()), "training")
    progress = box.run / "progress.csv"
    last = progress.read_text().splitlines()[-1]
    with open(progress, "a") as handle:
        handle.write(last[:15])
    proc = box.train(["--resume", str(box.run), "meta_iterations=3"])
    with open(progress, newline="") as handle:
        rows = list(csv.reader(handle))
    ragged = sum(len(row) != len(rows[0]) for row in rows[1:])
    info = [f"progress.csv: {len(rows) - 1} rows, {ragged} of another length than the header"]
    return [Check(proc, expect_success(proc), info)]


def worker_fault(signum: int) -> CaseRun:
    """A case: `signum` to one sampler worker after the first checkpoint; the run stops
    with an error naming the worker within ~30 s."""

    def case(box: Sandbox) -> list[Check]:
        args = box.run_args(num_workers=2, worker_timeout_s=5, meta_iterations=50, horizon=100)
        started = box.start_train(args)
        if not wait_until(lambda: bool(checkpoints(box.run)), started):
            raise SetupFailed("a first checkpoint", box.finish(started))
        workers = sampler_workers(started.pid)
        if not workers:
            raise SetupFailed("finding a sampler worker", box.finish(started))
        victim = workers[-1]
        os.kill(victim, signum)
        signalled = time.monotonic()
        try:
            proc = box.finish(started)
        finally:
            if _proc_stat(victim) is not None and victim in group_members(started.pid):
                _signal(victim, signal.SIGCONT)
                _signal(victim, signal.SIGKILL)
        after = started.began + proc.seconds - signalled
        problems = expect_error(proc, 1, contains=["--resume"], patterns=[(r"worker \d", "the worker")])
        if proc.rc is not None and after > WORKER_FAULT_LIMIT_S:
            problems.append(f"exited {after:.0f} s after the signal")
        info = [f"signalled worker {workers.index(victim)} of {len(workers)}; exit {after:.1f} s later"]
        if proc.leftovers:
            info.append(f"{proc.leftovers} process(es) left running")
        return [Check(proc, problems, info)]

    return case


def too_many_workers(box: Sandbox) -> list[Check]:
    started = box.start_train(box.root_args(num_workers=100))
    most = 0
    while started.popen.poll() is None and time.monotonic() - started.began < Settings.timeout_s:
        most = max(most, len(sampler_workers(started.pid)))
        if most > 4:  # do not let 100 interpreters import torch on this machine
            kill_group(started.pid)
            break
        time.sleep(0.1)
    proc = box.finish(started)
    problems = expect_error(proc, 2)
    if most:
        problems.append(f"started worker processes (saw {most}{', killed' if most > 4 else ''})")
    if proc.seconds > QUICK_EXIT_S:
        problems.append(f"took {proc.seconds:.0f} s")
    return [Check(proc, problems, [f"exited after {proc.seconds:.1f} s"])]


def yaml_syntax_error(box: Sandbox) -> list[Check]:
    bad = box.dir / "bad.yaml"
    bad.write_text("meta_iterations: [1,\n")
    proc = box.train(["--config", str(bad), *box.root_args()])
    return [Check(proc, expect_error(proc, 2, contains=[str(bad)]))]


def non_finite_values(box: Sandbox) -> list[Check]:
    checks = []
    for suffix, change in (("a", {"inner_lr": ".inf"}), ("b", {"max_kl": ".nan"})):
        proc = box.train(box.root_args(**change))
        key, value = next(iter(change.items()))
        checks.append(Check(proc, expect_error(proc, 2), [f"{key}={value}"], suffix))
    return checks


def evaluate_options(box: Sandbox) -> list[Check]:
    train_one(box, eval_tasks=2, eval_steps=1)
    checks = []
    options = (["--steps", "-1"], ["--inner-lrs", "abc"], ["--inner-lrs", "-0.1"], ["--tasks", "0"])
    for suffix, option in zip("abcd", options):
        proc = box.evaluate([str(box.run), *option])
        checks.append(Check(proc, expect_error(proc, 2), [" ".join(option)], suffix))
    return checks


def corrupt_latest_checkpoint(box: Sandbox) -> list[Check]:
    require_success(box.train(box.run_args()), "training")
    (box.run / "checkpoints" / "iteration_000002.pt").write_bytes(random.Random(27).randbytes(4096))
    proc = box.evaluate([str(box.run)])
    problems = expect_error(
        proc, 2, contains=["iteration_000002.pt", "iteration_000001.pt"], absent=["weights_only=False"]
    )
    return [Check(proc, problems)]


def debug_traceback(box: Sandbox) -> list[Check]:
    checks = []
    for suffix, options, env in (("a", ["--debug"], {}), ("b", [], {"METARL_DEBUG": "1"})):
        proc = box.train([*options, *box.root_args(env_id="metarl/Nope-v0")], env=env)
        problems = [f"rc {proc.rc}, expected 2"] if proc.rc != 2 else []
        problems += [] if TRACEBACK in proc.stderr else ["no traceback"]
        checks.append(Check(proc, problems, [" ".join(options) or "METARL_DEBUG=1"], suffix))
    return checks


@dataclass
class Case:
    number: int
    group: str  # A: held before the fixes; B: the fixes; info: informational
    name: str
    run: Callable[[Sandbox], list[Check]]


CASES = [
    Case(1, "A", "unknown env id", bad_input("env_id=metarl/Nope-v0", patterns=[FAMILIES])),
    Case(2, "A", "unknown config key inner_lrr", bad_input("inner_lrr=0.1", contains=["did you mean"])),
    Case(3, "A", "wrong type meta_batch_size=abc", bad_input("meta_batch_size=abc")),
    Case(4, "A", "unknown agent", bad_input("agent=nope")),
    Case(5, "A", "unknown preset --config nope", bad_input("--config", "nope")),
    Case(6, "A", "corrupt checkpoint to evaluate.py", corrupt_checkpoint),
    Case(7, "A", "malicious (pickled code) checkpoint", malicious_checkpoint),
    Case(8, "A", "kill -9 then resume: same policy", interrupted_resume(signal.SIGKILL, True, None)),
    Case(9, "A", "SIGTERM then resume: same policy", interrupted_resume(signal.SIGTERM, False, 143)),
    Case(10, "A", "SIGINT then resume: same policy", interrupted_resume(signal.SIGINT, True, 130)),
    Case(11, "A", "3 random kill -9: no torn checkpoint", repeated_kills),
    Case(12, "A", "num_workers 1 vs 2: same policy", worker_counts),
    Case(13, "A", "--resume of a directory without checkpoint", resume_without_checkpoint),
    Case(14, "B", "maml_ppo outer_lr=1e6: non-finite", non_finite_maml_ppo),
    Case(15, "B", "rl2_ppo bandit outer_lr=1e6", non_finite_rl2_ppo),
    Case(16, "B", "read-only checkpoints directory", read_only_checkpoints),
    Case(17, "B", "read-only run_root", read_only_run_root),
    Case(18, "B", "disk full during a checkpoint", disk_full),
    Case(19, "B", "torn last row of progress.csv, resume", torn_progress_row),
    Case(20, "B", "hung (SIGSTOP) sampler worker", worker_fault(signal.SIGSTOP)),
    Case(21, "B", "killed (kill -9) sampler worker", worker_fault(signal.SIGKILL)),
    Case(22, "B", "num_workers=100", too_many_workers),
    Case(23, "B", "YAML syntax error in a --config file", yaml_syntax_error),
    Case(24, "B", "malformed override hidden_sizes=[64,", bad_input("hidden_sizes=[64,", absent=[UNICODE])),
    Case(25, "B", "non-finite values inner_lr=.inf, max_kl=.nan", non_finite_values),
    Case(26, "B", "evaluate.py bad options", evaluate_options),
    Case(27, "info", "corrupt latest checkpoint, an earlier one good", corrupt_latest_checkpoint),
    Case(28, "info", "--debug / METARL_DEBUG=1 show the traceback", debug_traceback),
]


# --- table ---------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    name: str
    verdict: str
    proc: Proc | None = None
    note: str = ""


def verdict(check: Check) -> str:
    if check.skipped:
        return check.skipped
    if check.proc is not None and check.proc.timed_out:
        return "timeout"
    return "fails" if check.problems else "holds"


def run_case(case: Case) -> list[Row]:
    box = Sandbox()
    try:
        checks = case.run(box)
    except SetupFailed as failed:
        proc = failed.proc
        what = f"setup failed: {failed.what}" + (f" (rc {proc.rc})" if proc else "")
        outcome = "timeout" if proc and proc.timed_out else "fails"
        return [Row(str(case.number), case.name, outcome, proc, what)]
    except Exception as err:
        return [Row(str(case.number), case.name, "error", None, f"{type(err).__name__}: {err}")]
    finally:
        box.close()
    rows = []
    for check in checks:
        notes = [*check.problems, *check.info]
        if check.proc is not None and (warned := len(warning_lines(check.proc.stderr))):
            notes.append(f"{warned} 'warning:' line(s)")
        number = f"{case.number}{check.suffix}"
        rows.append(Row(number, case.name, verdict(check), check.proc, "; ".join(notes)))
    return rows


def cell(text: str, limit: int = LAST_LINE_CHARS) -> str:
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def table(rows: list[Row]) -> str:
    lines = [
        "| # | case | rc | stderr lines | traceback | last stderr line | verdict | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        proc = row.proc
        if proc is None:
            rc = lines_count = traceback = last = ""
        else:
            all_lines = stderr_lines(proc.stderr)
            rc = "timeout" if proc.timed_out else str(proc.rc)
            lines_count, traceback = str(len(all_lines)), "yes" if TRACEBACK in proc.stderr else "no"
            last = f"`{cell(all_lines[-1])}`" if all_lines else ""
        note = cell(row.note, 300)
        fields = [row.case, row.name, rc, lines_count, traceback, last, f"**{row.verdict}**", note]
        lines.append("| " + " | ".join(fields) + " |")
    return "\n".join(lines)


def parse_only(text: str) -> set[int]:
    numbers: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        numbers.update(range(int(low), int(high or low) + 1))
    return numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", type=parse_only, help="case numbers to run, e.g. 14,16 or 1-13")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--timeout", type=float, default=Settings.timeout_s, help="seconds per command")
    args = parser.parse_args(argv)
    Settings.timeout_s = args.timeout
    cases = [case for case in CASES if args.only is None or case.number in args.only]
    if args.list:
        for case in cases:
            print(f"{case.number:3d}  {case.group:4s}  {case.name}")
        return 0
    if not cases:
        parser.error(f"no case among {sorted(args.only)}; see --list")
    rows: list[Row] = []
    start = time.monotonic()
    for case in cases:
        began = time.monotonic()
        print(f"case {case.number}: {case.name} ...", end=" ", file=sys.stderr, flush=True)
        case_rows = run_case(case)
        rows += case_rows
        verdicts = ", ".join(row.verdict for row in case_rows)
        print(f"{verdicts} ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
    print(table(rows))
    held = sum(row.verdict == "holds" for row in rows)
    print(f"\n{held} of {len(rows)} rows hold; {len(cases)} cases in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
