"""Regenerate the locomotion results: train each preset to the end (resuming), evaluate it, print a row.

    python benchmarks/reproduce.py maml_trpo_halfcheetah_vel maml_trpo_halfcheetah_dir
    python benchmarks/reproduce.py maml_ppo_halfcheetah_vel --root runs/reproduce

Each preset ``configs/<name>.yaml`` trains in ``<root>/<name>/``. Running the command again
continues an interrupted run from its latest checkpoint (a resumed run equals an
uninterrupted one) and skips training that is complete; evaluation (``evaluate.py``: 40
held-out tasks, 0..3 gradient steps) always runs. The commands it runs are printed, and the
last lines are a markdown table: our mean return after 0..3 steps next to the paper's matching
row, with the run's env steps and training wall time. ``key=value`` overrides apply to new
runs only (for smoke tests; a resumed run keeps its own config).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluate import paper_reference  # noqa: E402
from metarl.checkpoint import load_checkpoint  # noqa: E402
from metarl.config import load_config  # noqa: E402


def run(command: list[str]) -> None:
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(
            f"reproduce: `{' '.join(command)}` exited with {result.returncode}; run again to resume"
        )


def reproduce(name: str, root: Path, overrides: list[str]) -> dict:
    """Train (or resume, or skip) and evaluate preset `name`; returns its table row."""
    preset = ROOT / "configs" / f"{name}.yaml"
    if not preset.exists():
        choices = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml") if not p.stem.startswith("rl2_"))
        raise SystemExit(f"reproduce: no preset {preset.name}; choose from {', '.join(choices)}")
    run_dir = root / name
    python = sys.executable
    checkpoints = run_dir / "checkpoints"
    started = checkpoints.is_dir() and any(checkpoints.glob("*.pt"))
    state = load_checkpoint(run_dir) if started else None  # a corrupt checkpoint stops here
    if state is None:
        run(
            [
                python,
                "train.py",
                "--config",
                str(preset),
                "--run-dir",
                str(run_dir),
                "--no-progress",
                *overrides,
            ]
        )
    elif state["iteration"] < state["config"]["meta_iterations"]:
        run([python, "train.py", "--resume", str(run_dir), "--no-progress"])
    else:
        print(f"{name}: training complete ({state['iteration']} iterations), evaluating", flush=True)
    run([python, "evaluate.py", str(run_dir)])
    summary = json.loads((run_dir / "evaluation.json").read_text())
    with open(run_dir / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    config = load_config(run_dir / "config.yaml")
    return {
        "name": name,
        "env_id": config.env_id,
        "ours": [(step["mean_return"], step["stderr"]) for step in summary["steps"]],
        "paper": paper_reference(config),
        "env_steps": int(float(rows[-1]["charts/env_steps"])),
        "train_hours": sum(float(row["time/iteration_s"]) for row in rows) / 3600,
        "iterations": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("presets", nargs="+", help="preset names, e.g. maml_trpo_halfcheetah_vel")
    parser.add_argument("--root", default="runs/reproduce", help="where the runs live (default: %(default)s)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for new runs")
    args = parser.parse_args()
    rows = [reproduce(name, (ROOT / args.root).resolve(), args.set) for name in args.presets]
    print(
        "\n| preset | return after 0 / 1 / 2 / 3 steps (± s.e.) | paper (same row) | env steps | train time |"
    )
    print("|---|---|---|---|---|")
    for row in rows:
        ours = " / ".join(f"{mean:.2f} ± {se:.2f}" for mean, se in row["ours"])
        paper = (
            f"{row['paper'][0]}: " + " / ".join(f"{x:.2f}" for x in row["paper"][1]) if row["paper"] else "-"
        )
        hours = f"{row['train_hours']:.2f} h ({row['iterations']} iterations)"
        print(f"| {row['name']} | {ours} | {paper} | {row['env_steps']:,} | {hours} |")


if __name__ == "__main__":
    main()
