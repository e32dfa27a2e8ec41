"""Meta-RL agents (`metarl.agents`). Importing this package registers them by the config's
``agent`` name (`metarl.registry`), with the classical baselines of the bandit and
tabular-MDP families."""

from __future__ import annotations

from metarl.agents import classical
from metarl.agents.maml import MAML, maml_ppo, maml_trpo
from metarl.agents.rl2 import RL2, rl2_ppo, rl2_trpo

from metarl.registry import register_agent

register_agent("maml_trpo", maml_trpo, recurrent=False)
register_agent("maml_ppo", maml_ppo, recurrent=False)
register_agent("rl2_ppo", rl2_ppo, recurrent=True)
register_agent("rl2_trpo", rl2_trpo, recurrent=True)
classical.register()

__all__ = ["MAML", "RL2", "classical"]
