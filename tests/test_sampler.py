"""Sampler backends: identical episodes, consistent padding, clean shutdown, clear failures."""

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest
import torch
from metarl.envs.navigation import Navigation2DEnv

from metarl import seeding
from metarl.policies import GaussianMLPPolicy, detach_params, stack_params
from metarl.sampling import Sampler, SamplerError

ENV_ID = "metarl/Navigation2D-v0"
FIELDS = ("observations", "actions", "rewards", "mask", "terminated")


def _setup(num_tasks=6):
    tasks = Navigation2DEnv.sample_tasks(num_tasks, np.random.default_rng(0))
    policy = GaussianMLPPolicy(2, 2, (16, 16), init_std=0.05, generator=torch.Generator().manual_seed(0))
    params = {k: v.clone() for k, v in detach_params(stack_params(policy.params(), num_tasks)).items()}
    params["w2"] += 0.3 * torch.randn(params["w2"].shape, generator=torch.Generator().manual_seed(1))
    # Task 0: a near-deterministic policy stepping (0.05, 0) (policy action 0.5, rescaled from
    # [-1, 1] onto the bounds [-0.1, 0.1]) to a goal two steps away, so
    # most of its episodes terminate early while the others run to the horizon.
    tasks[0] = {"goal": [0.1, 0.0]}
    params["w2"][0] = 0.0
    params["b2"][0] = torch.tensor([0.5, 0.0])
    params["log_std"][0] = -7.0
    return tasks, policy, params


def _mujoco_setup(env_id, num_tasks):
    """A small random policy on `num_tasks` tasks of a MuJoCo family, and a sampling stream."""
    from metarl.policies import make_policy
    from metarl.tasks import family_of

    family = family_of(env_id)
    generator = torch.Generator().manual_seed(0)
    policy = make_policy(family.observation_space, family.action_space, [16, 16], "relu", 1.0, generator)
    tasks = family.sample_tasks(num_tasks, np.random.default_rng(0))
    params = detach_params(stack_params(policy.params(), num_tasks))
    return tasks, policy, params, seeding.seed_sequence(5, seeding.SAMPLING, 0)


def test_local_and_process_backends_return_identical_episodes():
    tasks, policy, params = _setup()
    stream = seeding.seed_sequence(7, seeding.SAMPLING, 0)
    with Sampler(ENV_ID, {}, policy.spec(), 50, backend="local") as local:
        expected = local.sample(tasks, params, 5, stream)
        again = local.sample(tasks, params, 5, stream)
    with Sampler(ENV_ID, {}, policy.spec(), 50, backend="processes", num_workers=2) as processes:
        got = processes.sample(tasks, params, 5, stream)
    for field in FIELDS:
        assert torch.equal(getattr(expected, field), getattr(got, field)), field
        assert torch.equal(getattr(expected, field), getattr(again, field)), field
    assert expected.observations.shape == (6, 5, 50, 2)
    assert expected.terminated.any() and not expected.terminated.all()


def test_episodes_are_padded_consistently_and_follow_per_task_params():
    tasks, policy, params = _setup()
    with Sampler(ENV_ID, {}, policy.spec(), 50, backend="local") as sampler:
        episodes = sampler.sample(tasks, params, 4, seeding.seed_sequence(0, 3))
    lengths = episodes.lengths
    for task in range(6):
        for ep in range(4):
            n = int(lengths[task, ep])
            assert torch.all(episodes.mask[task, ep, :n] == 1) and torch.all(episodes.mask[task, ep, n:] == 0)
            assert torch.all(episodes.rewards[task, ep, n:] == 0)
            assert bool(episodes.terminated[task, ep]) == (n < 50)
            goal = torch.tensor(tasks[task]["goal"])
            # reward of step t is -distance of observation t+1 to the goal
            positions = torch.cumsum((0.1 * episodes.actions[task, ep, :n]).clamp(-0.1, 0.1), 0)
            assert torch.allclose(episodes.rewards[task, ep, :n], -(positions - goal).norm(dim=-1), atol=1e-5)
    # actions follow each task's own mean: the per-task parameters differ, so do the actions
    assert not torch.allclose(episodes.actions[0], episodes.actions[1])
    assert episodes.env_steps == int(lengths.sum())


def test_sampler_rejects_params_of_the_wrong_task_count():
    tasks, policy, params = _setup()
    with Sampler(ENV_ID, {}, policy.spec(), 10, backend="local") as sampler:
        with pytest.raises(ValueError, match="task rows"):
            sampler.sample(tasks[:3], params, 2, seeding.seed_sequence(0, 3))


def test_close_leaves_no_process_behind():
    tasks, policy, params = _setup()
    sampler = Sampler(ENV_ID, {}, policy.spec(), 10, backend="processes", num_workers=2)
    processes = list(sampler._workers._processes)
    sampler.sample(tasks, params, 2, seeding.seed_sequence(0, 3))
    sampler.close()
    sampler.close()  # idempotent
    assert all(not p.is_alive() for p in processes)
    assert not [c for c in mp.active_children() if c.name.startswith("metarl-sampler")]


def test_a_killed_worker_gives_a_clear_error_not_a_hang_and_closes_cleanly():
    tasks, policy, params = _setup()
    sampler = Sampler(ENV_ID, {}, policy.spec(), 10, backend="processes", num_workers=2)
    sampler.sample(tasks, params, 2, seeding.seed_sequence(0, 3))  # creates the shared block
    block_name = sampler._workers._block.name
    os.kill(sampler._workers._processes[1].pid, signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(SamplerError, match=r"worker 1 .*on tasks \[.*\]: the process died"):
        sampler.sample(tasks, params, 2, seeding.seed_sequence(0, 3))
    assert time.monotonic() - start < 10
    sampler.close()
    assert not [c for c in mp.active_children() if c.name.startswith("metarl-sampler")]
    assert not os.path.exists(f"/dev/shm/{block_name.lstrip('/')}")  # the episode block is freed


def test_an_env_error_in_a_worker_names_the_tasks_and_the_cause():
    tasks, policy, params = _setup()
    tasks[4] = {"goal": [1.0, 2.0, 3.0]}  # invalid: three coordinates
    with Sampler(ENV_ID, {}, policy.spec(), 10, backend="processes", num_workers=2) as sampler:
        with pytest.raises(SamplerError, match=r"worker 1 .*tasks .*: ValueError: .*2 coordinates"):
            sampler.sample(tasks, params, 2, seeding.seed_sequence(0, 3))


def test_policy_actions_are_rescaled_onto_the_action_bounds():
    import gymnasium as gym

    from metarl.sampling.worker import to_env_actions

    space = gym.spaces.Box(np.array([-0.1, 0.0, -np.inf]), np.array([0.1, 4.0, np.inf]), dtype=np.float32)
    actions = np.array([[-1.0, -1.0, 5.0], [0.0, 0.0, -3.0], [1.0, 1.0, 0.0], [3.0, -2.0, 1.0]])
    expected = np.array([[-0.1, 0.0, 5.0], [0.0, 2.0, -3.0], [0.1, 4.0, 0.0], [0.1, 0.0, 1.0]], np.float32)
    assert np.allclose(to_env_actions(actions, space), expected)


def test_sampler_recovers_after_a_worker_error_without_stale_episodes():
    tasks, policy, params = _setup()
    bad = list(tasks)
    bad[0] = {"goal": [1.0]}  # worker 0 fails, worker 1 succeeds and must not leave its reply behind
    stream = seeding.seed_sequence(3, seeding.SAMPLING, 9)
    with Sampler(ENV_ID, {}, policy.spec(), 20, backend="local") as local:
        expected = local.sample(tasks, params, 2, stream)
    with Sampler(ENV_ID, {}, policy.spec(), 20, backend="processes", num_workers=2) as sampler:
        with pytest.raises(SamplerError, match="worker 0"):
            sampler.sample(bad, params, 2, seeding.seed_sequence(3, seeding.SAMPLING, 8))
        got = sampler.sample(tasks, params, 2, stream)
    for field in FIELDS:
        assert torch.equal(getattr(expected, field), getattr(got, field)), field


def test_horizon_beyond_the_registered_limit_is_honoured():
    tasks, policy, params = _setup(2)
    params = {k: v[1:] for k, v in params.items()}  # task 1 only: a random policy, goal never reached
    with Sampler(ENV_ID, {}, policy.spec(), 150, backend="local") as sampler:
        episodes = sampler.sample(tasks[1:], params, 2, seeding.seed_sequence(0, 3))
    assert episodes.horizon == 150 and torch.all(episodes.lengths == 150)


def test_backends_agree_on_a_mujoco_family_with_early_terminations():
    tasks, policy, params, stream = _mujoco_setup("metarl/AntVel-v0", 3)
    with Sampler("metarl/AntVel-v0", {}, policy.spec(), 60, backend="local") as local:
        expected = local.sample(tasks, params, 3, stream)
    with Sampler("metarl/AntVel-v0", {}, policy.spec(), 60, backend="processes", num_workers=2) as processes:
        got = processes.sample(tasks, params, 3, stream)
    for field in FIELDS:
        assert torch.equal(getattr(expected, field), getattr(got, field)), field
    assert expected.terminated.any()  # the ant falls over in some episodes: padding is exercised
    lengths = expected.lengths
    assert torch.all(expected.mask.sum(-1) == lengths) and lengths.min() < 60


def test_a_call_left_early_does_not_leak_stale_episodes_into_the_next(monkeypatch):
    """Ctrl-C (here: an exception) while workers sample: the next call waits their replies
    out before reusing the shared block, and returns its own episodes."""
    import metarl.sampling.sampler as sampler_module

    tasks, policy, params = _setup()
    stream = seeding.seed_sequence(3, seeding.SAMPLING, 9)
    with Sampler(ENV_ID, {}, policy.spec(), 50, backend="local") as local:
        expected = local.sample(tasks, params, 4, stream)
    with Sampler(ENV_ID, {}, policy.spec(), 50, backend="processes", num_workers=2) as sampler:
        real_wait = sampler_module.mp_connection.wait

        def interrupted_wait(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(sampler_module.mp_connection, "wait", interrupted_wait)
        other = {k: v + 0.5 for k, v in params.items()}  # an earlier call with other parameters
        with pytest.raises(KeyboardInterrupt):
            sampler.sample(tasks, other, 4, seeding.seed_sequence(3, seeding.SAMPLING, 8))
        monkeypatch.setattr(sampler_module.mp_connection, "wait", real_wait)
        got = sampler.sample(tasks, params, 4, stream)
    for field in FIELDS:
        assert torch.equal(getattr(expected, field), getattr(got, field)), field


def test_a_hung_worker_is_stopped_and_reported_within_its_time_limit():
    """A stopped (SIGSTOP) worker misses its request's limit: worker_timeout_s plus 4 ms per
    env step of the request (here 0.5 s + 60 steps x 4 ms)."""
    tasks, policy, params = _setup()
    with Sampler(ENV_ID, {}, policy.spec(), 10, backend="processes", num_workers=2, timeout_s=0.5) as sampler:
        os.kill(sampler._workers._processes[0].pid, signal.SIGSTOP)
        start = time.monotonic()
        with pytest.raises(
            SamplerError,
            match=r"worker 0 .*on tasks .*no answer within 1 s \(worker_timeout_s=0.5 plus 4 ms per env step",
        ):
            sampler.sample(tasks, params, 2, seeding.seed_sequence(0, 3))
        assert time.monotonic() - start < 3
        with pytest.raises(SamplerError, match=r"died"):  # and stays reported, no hang
            sampler.sample(tasks, params, 2, seeding.seed_sequence(0, 3))


def test_a_family_without_its_own_vector_env_samples_through_gymnasiums_sync_vector_env():
    """Same episodes as through the family's batched vector env (same physics, same reward
    code, same seeds), only slower."""
    import gymnasium as gym

    plain_id = "metarl/HalfCheetahVelNoVectorEnv-v0"  # this process only: local backend
    if plain_id not in gym.registry:
        gym.register(plain_id, entry_point="metarl.envs.locomotion:HalfCheetahVelEnv", max_episode_steps=200)
    tasks, policy, params, stream = _mujoco_setup("metarl/HalfCheetahVel-v0", 2)
    episodes = []
    for env_id in ("metarl/HalfCheetahVel-v0", plain_id):
        with Sampler(env_id, {}, policy.spec(), 30, backend="local") as sampler:
            episodes.append(sampler.sample(tasks, params, 3, stream))
            episodes.append(sampler.sample(tasks[:1], {k: v[:1] for k, v in params.items()}, 2, stream))
    for field in FIELDS:
        assert torch.equal(getattr(episodes[0], field), getattr(episodes[2], field)), field
        assert torch.equal(getattr(episodes[1], field), getattr(episodes[3], field)), field


def test_the_reused_shared_block_leaves_nothing_of_an_earlier_call():
    """A call whose episodes ran to the horizon, then one with early terminations: the
    second call's padding is zeros, not the first call's steps."""
    tasks, policy, params = _setup()
    far = [{"goal": [9.0, 9.0]} for _ in tasks]  # never reached in 50 steps: every step written
    stream = seeding.seed_sequence(7, seeding.SAMPLING, 0)
    with Sampler(ENV_ID, {}, policy.spec(), 50, backend="local") as local:
        expected = local.sample(tasks, params, 5, stream)
    with Sampler(ENV_ID, {}, policy.spec(), 50, backend="processes", num_workers=2) as processes:
        assert processes.sample(far, params, 5, stream).mask.all()
        got = processes.sample(tasks, params, 5, stream)
    for field in FIELDS:
        assert torch.equal(getattr(expected, field), getattr(got, field)), field
    padding = got.mask == 0
    assert padding.any() and (got.observations[padding] == 0).all() and (got.rewards[padding] == 0).all()
