"""The Meta-World families (issue 27): gymnasium's env checker, Meta-World's own train/test
split, tasks that round-trip through JSON, success as defined, the sampler's episodes equal
Meta-World's env stepped by hand, and short MAML and RL2 runs on ML1 reach-v3."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import metarl
from metarl.evaluation import success_rates
from metarl.policies import GaussianMLPPolicy, detach_params, stack_params
from metarl.sampling import Sampler
from metarl.sampling.worker import to_env_actions
from metarl.tasks import family_of, sample_test_tasks, sample_train_tasks

metaworld = pytest.importorskip("metaworld")

ML1 = ("metarl/MetaWorld-ML1-v3", {"env_name": "reach-v3"})


@pytest.fixture(scope="module")
def ml1():
    return family_of(*ML1)


@pytest.fixture(scope="module")
def ml10():
    return family_of("metarl/MetaWorld-ML10-v3")


def test_the_families_pass_gymnasiums_env_checker(ml1, ml10):
    for family in (ml1, ml10):
        family.set_task(family.test_task_groups[-1][3])
        check_env(family, skip_render_check=True)
    # the vector env's sub-envs too: one sub-env per task, each its own class
    vector = gym.make_vec("metarl/MetaWorld-ML10-v3", num_envs=2, vectorization_mode="vector_entry_point")
    vector.unwrapped.set_attr("task", [ml10.train_task_groups[0][0], ml10.test_task_groups[1][0]])
    obs, _ = vector.reset()
    assert obs.shape == (2, 39)
    # gymnasium's step API gives what each task's own env gives
    actions = np.random.default_rng(2).uniform(-1, 1, (5, 2, 4)).astype(np.float32)
    for sub, task in enumerate([ml10.train_task_groups[0][0], ml10.test_task_groups[1][0]]):
        ml10.set_task(task)
        single = _play(ml10, actions[:, sub])
        vector.reset()
        for t in range(5):
            obs, reward, _, _, info = vector.step(actions[t])
            assert np.array_equal(
                single[t + 1], np.concatenate([obs[sub], [reward[sub], info["success"][sub]]])
            )
    vector.close()


def test_ml45_passes_the_env_checker():  # about 45 s: building ML45 resets each of 50 classes 50 times
    family = family_of("metarl/MetaWorld-ML45-v3")
    assert len(family.train_task_groups) == 45 and len(family.test_task_groups) == 5
    family.set_task(family.test_task_groups[0][0])
    check_env(family, skip_render_check=True)


def test_ml10_trains_on_its_10_classes_and_tests_on_5_others(ml10):
    bench = metaworld.ML10(seed=0)
    train_classes = {group[0]["env_name"] for group in ml10.train_task_groups}
    test_classes = {group[0]["env_name"] for group in ml10.test_task_groups}
    assert train_classes == set(bench.train_classes) and test_classes == set(bench.test_classes)
    assert len(train_classes) == 10 and len(test_classes) == 5 and not train_classes & test_classes
    drawn = [t for i in range(30) for t in sample_train_tasks(ml10, 20, seed=1, iteration=i)]
    assert {t["split"] for t in drawn} == {"train"} and {t["env_name"] for t in drawn} == train_classes
    # a meta-batch of 20 is 2 tasks of each class, as Meta-World's own ML10 vector env spreads it
    batch = sample_train_tasks(ml10, 20, seed=1, iteration=0)
    assert sorted(np.unique([t["env_name"] for t in batch], return_counts=True)[1]) == [2] * 10
    held_out = sample_test_tasks(ml10, 250, seed=1)  # all of Meta-World's test tasks, each once
    assert {t["env_name"] for t in held_out} == test_classes
    assert len({json.dumps(t, sort_keys=True) for t in held_out}) == 250


def test_ml1_test_goals_are_meta_worlds_test_goals(ml1):
    bench = metaworld.ML1("reach-v3", seed=0)
    goal = lambda task: np.asarray(__import__("pickle").loads(task.data)["rand_vec"])  # noqa: E731
    for split, tasks in (("train", bench.train_tasks), ("test", bench.test_tasks)):
        for task in (
            sample_test_tasks(ml1, 5, seed=3) if split == "test" else sample_train_tasks(ml1, 5, 3, 0)
        ):
            assert task["split"] == split
            mine = ml1.bench.resolve(task)
            assert np.array_equal(goal(mine), goal(tasks[task["index"]]))
    train_goals = {tuple(goal(t)) for t in bench.train_tasks}
    assert not train_goals & {tuple(goal(t)) for t in bench.test_tasks}


def _play(env, actions):
    obs, _ = env.reset()
    rows = [obs]
    for action in actions:
        obs, reward, _, _, info = env.step(action)
        rows.append(np.concatenate([obs, [reward, info["success"]]]))
    return rows


def test_a_task_round_trips_through_json_to_the_same_env(ml1):
    task = sample_test_tasks(ml1, 1, seed=7)[0]
    assert (
        json.loads(json.dumps(task))
        == task
        == {"env_name": "reach-v3", "split": "test", "index": task["index"]}
    )
    actions = np.random.default_rng(0).uniform(-1, 1, (60, 4)).astype(np.float32)
    ml1.set_task(task)
    first = _play(ml1, actions)
    # a new family (as a resumed run or another process builds it) given the task from JSON
    again = family_of(*ML1)
    again.set_task(json.loads(json.dumps(task)))
    assert all(np.array_equal(a, b) for a, b in zip(first, _play(again, actions)))
    # and Meta-World's own env given its own task object
    bench = metaworld.ML1("reach-v3", seed=0)
    raw = bench.test_classes["reach-v3"]()
    raw.set_task(bench.test_tasks[task["index"]])
    assert all(np.array_equal(a, b) for a, b in zip(first, _play(raw, actions)))


def test_bad_tasks_and_kwargs_are_one_clear_error(ml1):
    with pytest.raises(ValueError, match="index must be an int in \\[0, 50\\)"):
        ml1.set_task({"env_name": "reach-v3", "split": "test", "index": 50})
    with pytest.raises(ValueError, match="no train class 'push-v3'"):
        ml1.set_task({"env_name": "push-v3", "split": "train", "index": 0})
    with pytest.raises(ValueError, match="keys"):
        ml1.set_task({"env_name": "reach-v3", "index": 0})
    with pytest.raises(ValueError, match="needs env_kwargs env_name"):
        gym.make("metarl/MetaWorld-ML1-v3")
    with pytest.raises(ValueError, match="unknown Meta-World env_name 'reach-v9'"):
        gym.make("metarl/MetaWorld-ML1-v3", env_name="reach-v9")


def test_success_is_meta_worlds_and_an_episode_succeeds_if_any_step_did(ml1):
    ml1.set_task(ml1.test_task_groups[0][0])
    obs, _ = ml1.reset()
    goal = ml1._env._target_pos  # hidden from the observation; a scripted hand moves to it
    flags = []
    for _ in range(150):
        obs, _, _, _, info = ml1.step(np.append(np.clip(10 * (goal - obs[:3]), -1, 1), 0.0))
        flags.append(info["success"])
    assert 0 < sum(flags) and not flags[0]  # Meta-World's reach success: within 5 cm of the goal
    # the rates: an episode counts once however many steps succeeded; classes weigh equally
    success = np.array([[[1, 0], [0, 0], [1, 1]]], bool)  # [steps 1, tasks 3, episodes 2]
    tasks = [{"c": "a"}, {"c": "a"}, {"c": "b"}]
    row = success_rates(success, tasks, lambda task: task["c"])[0]
    assert row["per_class"] == {"a": 0.25, "b": 1.0} and row["success_rate"] == pytest.approx(0.625)
    assert row["task_success"] == [0.5, 0.0, 1.0]


def test_sampled_episodes_are_meta_worlds_env_stepped_by_hand(ml1):
    """Sequential waves (one env per task) in two workers give the episodes, rewards and
    success flags of Meta-World's env stepped by hand with the same actions."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(obs_dim=39, act_dim=4, hidden_sizes=[16])
    tasks = sample_train_tasks(ml1, 3, seed=0, iteration=0)
    params = stack_params(detach_params(policy.params()), len(tasks))
    spec = {"obs_dim": 39, "act_dim": 4, "hidden_sizes": [16]}
    seeds = np.random.SeedSequence(11)
    with Sampler(*ML1, spec, 40, backend="local") as local:
        episodes = local.sample(tasks, params, 3, seeds)
    with Sampler(*ML1, spec, 40, backend="processes", num_workers=2) as workers:
        split = workers.sample(tasks, params, 3, seeds)
    for name in ("observations", "actions", "rewards", "mask", "success"):
        assert torch.equal(getattr(episodes, name), getattr(split, name)), name
    bench = metaworld.ML1("reach-v3", seed=0)
    for i, task in enumerate(tasks):
        raw = bench.train_classes["reach-v3"]()
        raw.set_task(bench.train_tasks[task["index"]])
        for k in range(3):
            obs, _ = raw.reset()
            hit = False
            for t in range(40):
                assert np.array_equal(episodes.observations[i, k, t].numpy(), obs.astype(np.float32)), (
                    i,
                    k,
                    t,
                )
                # the policy's action as the sampler sends it: mapped onto the Box, clipped
                action = to_env_actions(episodes.actions[i, k, t].numpy()[None], raw.action_space)[0]
                obs, reward, _, _, info = raw.step(action)
                assert episodes.rewards[i, k, t].item() == pytest.approx(reward, rel=1e-6)
                hit |= bool(info["success"])
            assert episodes.success[i, k].item() == hit


@pytest.mark.parametrize("agent", ["maml_trpo", "rl2_ppo"])
def test_short_training_run_and_evaluation_on_ml1_reach(agent, tmp_path):
    common = dict(
        env_id=ML1[0],
        env_kwargs=ML1[1],
        agent=agent,
        meta_iterations=2,
        meta_batch_size=2,
        horizon=30,
        sampler_backend="local",
        eval_tasks=3,
        seed=4,
    )
    extra = {"episodes_per_task": 2, "eval_steps": 1} if agent == "maml_trpo" else {"episodes_per_trial": 2}
    run = metarl.train(run_dir=tmp_path / agent, progress=False, **common, **extra)
    rows = run.metrics
    assert len(rows) == 2 and all(np.isfinite(list(row.values())).all() for row in rows)
    result = metarl.evaluate(metarl.load(run.path, sampler_backend="local"))
    success = result.summary["success"]
    assert len(success) == 2 and set(success[0]["per_class"]) == {"reach-v3"}
    assert all(0.0 <= row["success_rate"] <= 1.0 for row in success)
    assert {t["split"] for t in result.tasks} == {"test"}
    # meta-train success: the same on training tasks (evaluate.py --split train)
    trained = metarl.evaluate(metarl.load(run.path, sampler_backend="local"), split="train")
    assert {t["split"] for t in trained.tasks} == {"train"} and trained.summary["split"] == "train"
    assert len(trained.summary["success"]) == len(success)


def test_presets_cover_ml1_reach_push_pick_place_and_ml10_for_both_agents():
    from metarl.config import load_config, presets

    for agent in ("maml_trpo", "rl2_ppo"):
        names = {f"{agent}_metaworld_{v}" for v in ("reach", "push", "pick_place", "ml10")}
        assert names <= set(presets())
        configs = [load_config(name) for name in sorted(names)]
        assert {c.env_kwargs.get("env_name") for c in configs} == {
            "reach-v3",
            "push-v3",
            "pick-place-v3",
            None,
        }
        assert all(c.horizon == 500 and c.meta_batch_size == 20 for c in configs)


def test_a_resumed_ml1_run_equals_an_uninterrupted_one(tmp_path):
    """The tasks of a Meta-World run are drawn from the benchmark's lists by the run's
    seeded streams, so a run resumed from its checkpoint trains on the same tasks and
    reaches the same policy."""
    from metarl.training import resume
    from metarl.training import train as train_loop

    common = dict(
        env_id=ML1[0],
        env_kwargs=ML1[1],
        agent="maml_trpo",
        meta_batch_size=2,
        episodes_per_task=2,
        horizon=20,
        sampler_backend="local",
        hidden_sizes=[8],
        seed=5,
    )
    whole = metarl.train(run_dir=tmp_path / "whole", progress=False, meta_iterations=2, **common)
    part = metarl.train(run_dir=tmp_path / "part", progress=False, meta_iterations=1, **common)
    state, config, path = resume(part.path, ["meta_iterations=2"])
    train_loop(config, path, resume_state=state, progress=False)
    first, second = (
        torch.load(run / "checkpoints" / "iteration_000002.pt") for run in (whole.path, part.path)
    )
    for name, value in first["agent"]["policy"].items():
        assert torch.equal(value, second["agent"]["policy"][name]), name
    returns = [
        [row["meta/return_pre_adapt"] for row in run.metrics] for run in (whole, metarl.Run(path, config))
    ]
    assert returns[0] == returns[1]
