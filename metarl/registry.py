"""Where agents and per-family classical baselines register themselves.

The core looks names up here and never imports an agent or a family: `metarl.agents`
registers its agents (``register_agent``) and the classical baselines of the bandit and
tabular-MDP families (``register_baselines``) when it is imported, which ``import metarl``
does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class AgentEntry:
    """A registered agent.

    make: ``(config, policy, sampler) -> Agent``; recurrent: True for agents that sample whole
    trials with a GRU policy (RL2), False for per-task episodes with an MLP policy (MAML);
    reads: the config keys it reads (`metarl.config`): setting another is an error, and a
    run's config.yaml holds these.
    """

    name: str
    make: Callable[..., Any]
    recurrent: bool
    reads: frozenset[str]


@dataclass(frozen=True)
class FamilyBaselines:
    """The classical baselines of a task family, played on the same tasks as an RL2 agent.

    play(family, tasks, horizon, episodes_per_trial, task_seed) -> {name: {"mean", "stderr"
    (of the trial total over tasks), "parameter" (the tuned value or None), "task_totals"
    [tasks], and where the family has them "task_expected_totals" [tasks] and
    "episode_means" [episodes]}}; task_seed: the seed the tasks were drawn with (the
    baselines' own streams derive from it). expected_totals(episodes) -> [tasks]: an agent's
    trials scored without reward noise (None if the family has no such score). curves:
    baselines whose return per episode the adaptation plot draws beside the agent's.
    """

    play: Callable[..., dict[str, dict[str, Any]]]
    expected_totals: Callable[[Any], np.ndarray] | None = None
    curves: tuple[str, ...] = ()


AGENTS: dict[str, AgentEntry] = {}
_BASELINES: list[tuple[type, FamilyBaselines]] = []


def register_agent(name: str, make: Callable[..., Any], recurrent: bool, reads: frozenset[str]) -> None:
    """Register agent `name` (the config's ``agent`` key), which reads the config keys `reads`."""
    AGENTS[name] = AgentEntry(name, make, recurrent, frozenset(reads) | {"agent"})


def agent_entry(name: str) -> AgentEntry:
    """The registered agent `name`; KeyError naming the registered ones if there is none."""
    if name not in AGENTS:
        raise KeyError(f"unknown agent {name!r}; choose from {', '.join(sorted(AGENTS))}")
    return AGENTS[name]


def register_baselines(family_type: type, baselines: FamilyBaselines) -> None:
    """Register the classical baselines of every family env that is a `family_type`."""
    _BASELINES.append((family_type, baselines))


def baselines_for(family: Any) -> FamilyBaselines | None:
    """The classical baselines registered for `family` (an env instance), or None."""
    return next((entry for kind, entry in _BASELINES if isinstance(family, kind)), None)
