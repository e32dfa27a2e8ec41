"""Meta-RL agents (`metarl.agents`). Importing this package registers them by the config's
``agent`` name (`metarl.registry`), each with the config keys it reads, and the classical
baselines of the bandit and tabular-MDP families."""

from __future__ import annotations

from metarl.agents import classical
from metarl.agents.maml import MAML, maml_ppo, maml_trpo
from metarl.agents.rl2 import RL2, rl2_ppo, rl2_trpo

from metarl.config import section_keys
from metarl.registry import register_agent

MAML_KEYS = section_keys("run", "sampler", "maml", "evaluation")
# RL2 evaluates one trial per task: the gradient steps of the evaluation are not its
RL2_KEYS = section_keys("run", "sampler", "rl2", "evaluation") - {"eval_steps", "eval_inner_lrs"}

register_agent("maml_trpo", maml_trpo, recurrent=False, reads=MAML_KEYS | section_keys("trpo"))
register_agent("maml_ppo", maml_ppo, recurrent=False, reads=MAML_KEYS | section_keys("ppo"))
register_agent("rl2_ppo", rl2_ppo, recurrent=True, reads=(RL2_KEYS | section_keys("ppo")) - {"value_epochs"})
register_agent(  # the value's Adam steps at outer_lr; no gradient clipping
    "rl2_trpo",
    rl2_trpo,
    recurrent=True,
    reads=(RL2_KEYS | section_keys("trpo") | {"outer_lr"}) - {"max_grad_norm", "curvature_tasks"},
)
classical.register()

__all__ = ["MAML", "RL2", "classical"]
