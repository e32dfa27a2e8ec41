"""Rollout workers and sampler backends."""

from metarl.sampling.sampler import BACKENDS, Sampler, SamplerError

__all__ = ["BACKENDS", "Sampler", "SamplerError"]
