"""Rollout workers and sampler backends."""

from metarl.sampling.base import BACKENDS, SamplerError
from metarl.sampling.sampler import Sampler

__all__ = ["BACKENDS", "Sampler", "SamplerError"]
