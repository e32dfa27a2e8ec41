"""metarl: meta-reinforcement learning on gymnasium, MuJoCo and PyTorch.

``import metarl`` registers the task families (``gym.make("metarl/HalfCheetahVel-v0")``)
and the agents, and gives the Python API: `train`, `load`, `evaluate`; an agent's
``adapt(env, steps)`` returns a policy with ``act(observation)``.
"""

__version__ = "0.1.0"

import metarl.agents  # noqa: F401,E402  (registers the agents)
import metarl.envs  # noqa: F401,E402  (registers the task families)
from metarl.actors import Actor  # noqa: E402
from metarl.agent import Agent  # noqa: E402
from metarl.api import Run, load, train  # noqa: E402
from metarl.config import ConfigError, TrainConfig  # noqa: E402
from metarl.evaluation import Evaluation, evaluate  # noqa: E402

__all__ = ["Actor", "Agent", "ConfigError", "Evaluation", "Run", "TrainConfig", "evaluate", "load", "train"]
