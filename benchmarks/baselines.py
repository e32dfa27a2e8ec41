"""The classical bandit and MDP baselines on the RL2 paper's settings, next to the paper's.

    python benchmarks/baselines.py                 # bandits (n, k) in the paper's table, MDPs n = 10, 25
    python benchmarks/baselines.py --tasks 1000 --seed 1

The held-out tasks and the tuning tasks are exactly those `evaluate.py` uses for an RL2 run
of the same preset and seed, so these rows are what an RL2 evaluation prints beside the
agent. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from metarl.config import load_config
from metarl.evaluation import PAPER_RL2_BANDITS, classical_baselines
from metarl.tasks import family_of, sample_test_tasks

ROOT = Path(__file__).resolve().parents[1]

BANDIT_POLICIES = ["random", "greedy", "epsilon-greedy", "UCB1", "Thompson", "Gittins"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1000, help="held-out tasks per setting (default: 1000)")
    parser.add_argument("--seed", type=int, default=1, help="the run seed whose held-out tasks to use")
    parser.add_argument("--bandits", default="10x5,10x10,10x50,100x5,100x10,100x50", help="n x k settings")
    parser.add_argument("--mdps", default="10,25", help="episodes per trial")
    args = parser.parse_args()

    print("Bandits: total reward over n pulls, mean ± s.e. over held-out bandits (paper's value after /)")
    print("\n| n, k | " + " | ".join(BANDIT_POLICIES) + " | tuned (eps, UCB c, Gittins discount) | time |")
    print("|---" * (len(BANDIT_POLICIES) + 3) + "|")
    for setting in filter(None, args.bandits.split(",")):
        n, k = (int(x) for x in setting.split("x"))
        start = time.perf_counter()
        config = load_config(ROOT / "configs" / f"rl2_trpo_bandit_k{k}_n{n}.yaml", [f"seed={args.seed}"])
        family = family_of(config.env_id, config.env_kwargs)
        results = classical_baselines(
            family, sample_test_tasks(family, args.tasks, args.seed), config, args.seed
        )
        paper = PAPER_RL2_BANDITS.get((n, k), {})
        cells = [
            f"{results[p]['mean']:.2f} ± {results[p]['stderr']:.2f} / {paper.get(p, '-')}"
            for p in BANDIT_POLICIES
        ]
        tuned = ", ".join(f"{results[p]['parameter']:g}" for p in ("epsilon-greedy", "UCB1", "Gittins"))
        print(f"| {n}, {k} | " + " | ".join(cells) + f" | {tuned} | {time.perf_counter() - start:.0f} s |")

    print("\nTabular MDPs (10 states, 5 actions, episodes of 10 steps): trial total, mean ± s.e.")
    names = ["random", "state-blind greedy", "PSRL", "greedy", "optimal (knows the MDP)"]
    print("\n| episodes n | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for n in (int(x) for x in filter(None, args.mdps.split(","))):
        config = load_config(ROOT / "configs" / f"rl2_trpo_tabular_mdp_n{n}.yaml", [f"seed={args.seed}"])
        family = family_of(config.env_id, config.env_kwargs)
        results = classical_baselines(
            family, sample_test_tasks(family, args.tasks, args.seed), config, args.seed
        )
        print(
            f"| {n} | "
            + " | ".join(f"{results[p]['mean']:.1f} ± {results[p]['stderr']:.1f}" for p in names)
            + " |"
        )


if __name__ == "__main__":
    main()
