"""Regenerate the published results: train each preset to the end (resuming), evaluate it, print a row.

    python benchmarks/reproduce.py maml_trpo_halfcheetah_vel maml_trpo_halfcheetah_dir
    python benchmarks/reproduce.py maml_ppo_halfcheetah_vel --root runs/reproduce
    python benchmarks/reproduce.py rl2_trpo_bandit_k5_n10 rl2_trpo_tabular_mdp_n10

Each preset ``configs/<name>.yaml`` trains in ``<root>/<name>/``. Running the command again
continues an interrupted run from its latest checkpoint (a resumed run equals an
uninterrupted one) and skips training that is complete; evaluation (``evaluate.py``: 40
held-out tasks, 0..3 gradient steps; RL2: the preset's held-out tasks, 1000 for bandits and
MDPs, with the classical baselines on the same tasks) always runs. The commands it runs are
printed, and the last lines are markdown tables: for MAML, our mean return after 0..3 steps next
to the paper's matching row; for RL2, the mean return of each episode of a trial and the trial
total next to the best classical baseline's and the RL2 paper's; with each run's env steps and
training wall time. ``key=value`` overrides apply to new
runs only (for smoke tests; a resumed run keeps its own config).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

from metarl.agent import is_recurrent
from metarl.checkpoint import load_checkpoint
from metarl.config import load_config, presets
from metarl.evaluation import PAPER_RL2_BANDITS, paper_reference
from metarl.logger import progress_rows

ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str], seconds: float | None = None) -> None:
    """Run `command`; after `seconds` (if given) stop it with SIGTERM, on which training saves
    its last completed iteration (a later call resumes from it)."""
    print("$", " ".join(command), flush=True)
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        returncode = process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        print(f"reproduce: the training budget is spent, stopping `{command[1]}`", flush=True)
        process.send_signal(signal.SIGTERM)
        process.wait()
        return
    if returncode != 0:
        raise SystemExit(f"reproduce: `{' '.join(command)}` exited with {returncode}; run again to resume")


def trained_seconds(run_dir: Path) -> float:
    """The run's training time so far: the sum of its iterations' wall times (progress.csv)."""
    progress = run_dir / "progress.csv"
    if not progress.is_file():
        return 0.0
    return sum(float(row["time/iteration_s"] or 0) for row in progress_rows(progress))


def reproduce(name: str, root: Path, overrides: list[str], budget_hours: float | None = None) -> dict:
    """Train (or resume, or skip) and evaluate preset `name`; returns its table row. With
    `budget_hours`, training stops once the run has trained that long in all its sessions."""
    if name not in presets():
        raise SystemExit(f"reproduce: no preset {name}; choose from {', '.join(sorted(presets()))}")
    run_dir = root / name
    python = sys.executable
    checkpoints = run_dir / "checkpoints"
    started = checkpoints.is_dir() and any(checkpoints.glob("*.pt"))
    state = load_checkpoint(run_dir) if started else None  # a corrupt checkpoint stops here
    budget_s = None if budget_hours is None else budget_hours * 3600 - trained_seconds(run_dir)
    if budget_s is not None and budget_s <= 0:
        print(f"{name}: training budget of {budget_hours:g} h spent, evaluating", flush=True)
    elif state is None:
        run(
            [
                python,
                "train.py",
                "--config",
                name,
                "--run-dir",
                str(run_dir),
                "--no-progress",
                *overrides,
            ],
            budget_s,
        )
    elif state["iteration"] < state["config"]["meta_iterations"]:
        run([python, "train.py", "--resume", str(run_dir), "--no-progress"], budget_s)
    else:
        print(f"{name}: training complete ({state['iteration']} iterations), evaluating", flush=True)
    run([python, "evaluate.py", str(run_dir)])
    summary = json.loads((run_dir / "evaluation.json").read_text())
    if "success" in summary:  # Meta-World: meta-train success too, on training tasks
        run([python, "evaluate.py", str(run_dir), "--split", "train"])
        train_summary = json.loads((run_dir / "meta_train" / "evaluation.json").read_text())
    rows = progress_rows(run_dir / "progress.csv")
    config = load_config(run_dir / "config.yaml")
    row = {
        "name": name,
        "env_id": config.env_id,
        "recurrent": is_recurrent(config),
        "ours": [(step["mean_return"], step["stderr"]) for step in summary["steps"]],
        "paper": paper_reference(config),
        "env_steps": int(float(rows[-1]["charts/env_steps"])),
        "train_hours": sum(float(row["time/iteration_s"]) for row in rows) / 3600,
        "iterations": len(rows),
    }
    if "success" in summary:  # per step: (test success, train success)
        row["success"] = [
            (test["success_rate"], train["success_rate"])
            for test, train in zip(summary["success"], train_summary["success"])
        ]
    if row["recurrent"]:
        row["trial_total"] = summary["trial_total"]
        row["baseline"] = best_baseline(summary["baselines"])
        pulls_and_arms = (config.env_kwargs.get("num_pulls"), config.env_kwargs.get("num_arms"))
        paper = PAPER_RL2_BANDITS.get(pulls_and_arms) if config.env_id == "metarl/Bandit-v0" else None
        row["paper_rl2"] = paper["RL2"] if paper else None
    return row


def best_baseline(baselines: dict[str, dict]) -> tuple[str, dict] | None:
    """The classical baseline to hold RL2 against: Gittins on bandits, else the best one
    that does not know the task (PSRL on MDPs); None where there are none (locomotion)."""
    if "Gittins" in baselines:
        return "Gittins", baselines["Gittins"]
    fair = {name: value for name, value in baselines.items() if "knows" not in name}
    if not fair:
        return None
    name = max(fair, key=lambda n: fair[n]["mean"])
    return name, fair[name]


def print_tables(rows: list[dict]) -> None:
    """The MAML rows, then the RL2 rows, as markdown tables."""
    maml = [row for row in rows if not row["recurrent"]]
    rl2 = [row for row in rows if row["recurrent"]]
    if maml:
        print(
            "\n| preset | return after 0 / 1 / 2 / 3 steps (± s.e.) | paper (same row) "
            "| env steps | train time |"
        )
        print("|---|---|---|---|---|")
    for row in maml:
        ours = " / ".join(f"{mean:.2f} ± {se:.2f}" for mean, se in row["ours"])
        paper = (
            f"{row['paper'][0]}: " + " / ".join(f"{x:.2f}" for x in row["paper"][1]) if row["paper"] else "-"
        )
        print(f"| {row['name']} | {ours} | {paper} | {row['env_steps']:,} | {_hours(row)} |")
    if rl2:
        print(
            "\n| preset | return of episode 1 / 2 / ... of a trial | trial total (± s.e.) "
            "| baseline (same tasks) | ours - baseline (paired) | ours / baseline | paper RL2 "
            "| env steps | train time |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
    for row in rl2:
        episodes = " / ".join(f"{mean:.2f}" for mean, _ in row["ours"])
        total = row["trial_total"]
        if row["baseline"]:
            name, value = row["baseline"]
            baseline = f"{name} {value['mean']:.2f} ± {value['stderr']:.2f}"
            paired = value["agent_minus_this"]
            difference = f"{paired['mean']:+.2f} ± {paired['stderr']:.2f}"
            ratio = f"{total['mean'] / value['mean']:.3f}"
        else:
            baseline = difference = ratio = "-"
        paper = "-" if row["paper_rl2"] is None else f"{row['paper_rl2']:.1f}"
        print(
            f"| {row['name']} | {episodes} | {total['mean']:.2f} ± {total['stderr']:.2f} | {baseline} "
            f"| {difference} | {ratio} | {paper} | {row['env_steps']:,} | {_hours(row)} |"
        )


def print_success(rows: list[dict]) -> None:
    """Meta-World rows: success rates of the final checkpoint, meta-train and meta-test."""
    rows = [row for row in rows if "success" in row]
    if not rows:
        return
    print("\n| preset | meta-train success % (per step or episode) | meta-test success % ", end="")
    print("| env steps | train time |")
    print("|---|---|---|---|---|")
    for row in rows:
        train = " / ".join(f"{100 * pair[1]:.1f}" for pair in row["success"])
        test = " / ".join(f"{100 * pair[0]:.1f}" for pair in row["success"])
        print(f"| {row['name']} | {train} | {test} | {row['env_steps']:,} | {_hours(row)} |")


def _hours(row: dict) -> str:
    return f"{row['train_hours']:.2f} h ({row['iterations']} iterations)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("presets", nargs="+", help="preset names, e.g. maml_trpo_halfcheetah_vel")
    parser.add_argument("--root", default="runs/reproduce", help="where the runs live (default: %(default)s)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for new runs")
    parser.add_argument(
        "--hours", type=float, help="training budget per run, summed over its sessions (stops it there)"
    )
    args = parser.parse_args()
    rows = [reproduce(name, (ROOT / args.root).resolve(), args.set, args.hours) for name in args.presets]
    print_tables(rows)
    print_success(rows)


if __name__ == "__main__":
    main()
