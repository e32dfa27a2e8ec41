"""The one place random streams come from.

Every random number of a run derives from the run seed through a named, fixed
`np.random.SeedSequence` spawn key, e.g. ``(TRAIN_TASKS, iteration)``. Streams therefore do
not depend on the order in which they are requested, and a resumed run draws exactly what
an uninterrupted one would, without saving any RNG state.

Same seed and config give the same numbers on the same kind of machine. Episodes do not
depend on the number of sampler workers, but the learner's CPU reductions may differ in
the last bits with torch's thread count (that is, the core count) or the torch build.
"""

from __future__ import annotations

import numpy as np
import torch

# Top-level stream identifiers (the first element of a spawn key).
TRAIN_TASKS = 0
TEST_TASKS = 1
POLICY_INIT = 2
SAMPLING = 3
EVAL_SAMPLING = 4
MINIBATCHES = 5  # RL2's PPO/value minibatch shuffles
BASELINE_TUNING = 6  # tasks on which classical baselines tune their hyperparameters
BASELINES = 7  # the classical baselines' own randomness
ADAPT = 8  # Agent.adapt: the episodes it plays in the user's env and its actor's noise
META_TRAIN_EVAL = 9  # training tasks drawn to evaluate on (meta-train success, evaluate.py --split train)


def seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """The seed sequence of stream `key` of run `seed`."""
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))


def generator(seed: int, *key: int) -> np.random.Generator:
    """A numpy generator for stream `key` of run `seed`."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, *key)))


def torch_generator(seed: int, *key: int) -> torch.Generator:
    """A torch CPU generator for stream `key` of run `seed`."""
    state = seed_sequence(seed, *key).generate_state(2, np.uint64)
    torch_gen = torch.Generator()
    torch_gen.manual_seed(int(state[0] >> np.uint64(1)))
    return torch_gen


def slot_seeds(seq: np.random.SeedSequence, num_slots: int) -> np.ndarray:
    """Independent 32-bit seeds, one per rollout slot: [num_slots, 2] uint32 (reset, noise)."""
    return seq.generate_state(num_slots * 2, np.uint32).reshape(num_slots, 2)
