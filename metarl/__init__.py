"""metarl: meta-reinforcement learning on gymnasium, MuJoCo and PyTorch."""

__version__ = "0.1.0"
