"""The ray sampler backend: same episodes as the other backends, clear failures, clean close."""

import time

import pytest
import ray
import torch

from metarl import seeding
from metarl.sampling import Sampler, SamplerError
from tests.test_sampler import ENV_ID, FIELDS, _mujoco_setup, _setup


def test_ray_starts_a_local_cluster_when_none_runs_and_stops_it_on_close():
    # first in the module: the shared cluster below is not up yet
    assert not ray.is_initialized()
    tasks, policy, params = _setup(2)
    sampler = Sampler(ENV_ID, {}, policy.spec(), 10, backend="ray", num_workers=2)
    assert ray.is_initialized() and ray.cluster_resources()["CPU"] == 2
    episodes = sampler.sample(tasks, params, 2, seeding.seed_sequence(0, 3))
    assert episodes.observations.shape == (2, 2, 10, 2)
    sampler.close()
    sampler.close()  # idempotent
    assert not ray.is_initialized()
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(tasks, params, 2, seeding.seed_sequence(0, 3))


def test_a_sampler_left_open_closes_at_once_after_ray_has_shut_down():
    """At interpreter exit Ray's own hook shuts the cluster down before a sampler left open
    (e.g. a loaded agent's) is collected: closing it then must not start a new cluster."""
    tasks, policy, params = _setup(2)
    sampler = Sampler(ENV_ID, {}, policy.spec(), 10, backend="ray", num_workers=1)
    ray.shutdown()
    start = time.monotonic()
    sampler.close()
    assert not ray.is_initialized() and time.monotonic() - start < 5.0


@pytest.fixture(scope="module")
def local_cluster():
    """One local Ray cluster for the module (samplers join it instead of starting their own)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield
    ray.shutdown()


def _assert_same(expected, got):
    for field in FIELDS:
        assert torch.equal(getattr(expected, field), getattr(got, field)), field


def test_ray_returns_the_same_episodes_as_the_local_and_process_backends(local_cluster):
    tasks, policy, params = _setup()
    stream = seeding.seed_sequence(7, seeding.SAMPLING, 0)
    with Sampler(ENV_ID, {}, policy.spec(), 50, backend="local") as local:
        expected = local.sample(tasks, params, 5, stream)
    with Sampler(ENV_ID, {}, policy.spec(), 50, backend="processes", num_workers=2) as processes:
        _assert_same(expected, processes.sample(tasks, params, 5, stream))
    with Sampler(ENV_ID, {}, policy.spec(), 50, backend="ray", num_workers=2) as on_ray:
        _assert_same(expected, on_ray.sample(tasks, params, 5, stream))
        _assert_same(expected, on_ray.sample(tasks, params, 5, stream))  # actors are reused
    assert expected.terminated.any() and not expected.terminated.all()


def test_ray_agrees_on_a_mujoco_family_with_early_terminations(local_cluster):
    tasks, policy, params, stream = _mujoco_setup("metarl/AntVel-v0", 3)
    with Sampler("metarl/AntVel-v0", {}, policy.spec(), 60, backend="local") as local:
        expected = local.sample(tasks, params, 3, stream)
    with Sampler("metarl/AntVel-v0", {}, policy.spec(), 60, backend="ray", num_workers=2) as on_ray:
        _assert_same(expected, on_ray.sample(tasks, params, 3, stream))
    assert expected.terminated.any()


def test_ray_env_error_names_the_tasks_and_the_cause_and_the_sampler_recovers(local_cluster):
    tasks, policy, params = _setup()
    bad = list(tasks)
    bad[4] = {"goal": [1.0, 2.0, 3.0]}  # invalid: three coordinates; slots of worker 1
    stream = seeding.seed_sequence(3, seeding.SAMPLING, 9)
    with Sampler(ENV_ID, {}, policy.spec(), 20, backend="local") as local:
        expected = local.sample(tasks, params, 2, stream)
    with Sampler(ENV_ID, {}, policy.spec(), 20, backend="ray", num_workers=2) as on_ray:
        with pytest.raises(SamplerError, match=r"worker 1 .*tasks .*: ValueError: .*2 coordinates"):
            on_ray.sample(bad, params, 2, stream)
        _assert_same(expected, on_ray.sample(tasks, params, 2, stream))


def test_a_killed_ray_actor_gives_a_clear_error_not_a_hang(local_cluster):
    tasks, policy, params = _setup()
    with Sampler(ENV_ID, {}, policy.spec(), 10, backend="ray", num_workers=2) as on_ray:
        ray.kill(on_ray._workers._actors[1])
        start = time.monotonic()
        with pytest.raises(SamplerError, match=r"worker 1 .*tasks .*actor died"):
            on_ray.sample(tasks, params, 2, seeding.seed_sequence(0, 3))
        assert time.monotonic() - start < 30
