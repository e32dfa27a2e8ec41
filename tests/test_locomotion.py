"""MuJoCo locomotion families: protocol, reward formulas from simulator state, vector envs."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import metarl  # noqa: F401  (registers the metarl/ ids)
from metarl.tasks import TaskFamily, sample_test_tasks, sample_train_tasks

FAMILIES = ["HalfCheetahVel", "HalfCheetahDir", "AntVel", "AntDir", "AntGoal"]
# The paper's constants (shared/reference/PAPER_NUMBERS.md), written out independently.
CHEETAH_CTRL, ANT_CTRL, ANT_CONTACT, ANT_SURVIVE, GOAL_BONUS, GOAL_SURVIVE = (
    0.05,
    0.005,
    5e-4,
    1.05,
    4.0,
    0.05,
)


def _root_xy(env) -> np.ndarray:
    base = env.unwrapped
    if "Cheetah" in base.spec.id:
        return np.array([base.data.qpos[0], 0.0])
    return base.data.body(1).xpos[:2].copy()  # the torso


def expected_reward(
    name: str, task: dict, xy_before, xy_after, dt, action, cfrc_ext, healthy, torso_xy
) -> float:
    """The family's reward from simulator state, as the paper defines it.

    Velocity: root/torso position difference over dt (gymnasium v5's measure); AntGoal's
    distance: the torso's position after the step (qpos[:2]).
    """
    v_x = (xy_after[0] - xy_before[0]) / dt
    if name == "HalfCheetahVel":
        return -abs(v_x - task["velocity"]) - CHEETAH_CTRL * np.sum(np.square(action))
    if name == "HalfCheetahDir":
        return task["direction"] * v_x - CHEETAH_CTRL * np.sum(np.square(action))
    costs = ANT_CTRL * np.sum(np.square(action)) + ANT_CONTACT * np.sum(np.square(np.clip(cfrc_ext, -1, 1)))
    if name == "AntVel":
        return -abs(v_x - task["velocity"]) + ANT_SURVIVE * healthy - costs
    if name == "AntDir":
        return task["direction"] * v_x + ANT_SURVIVE * healthy - costs
    return -np.abs(torso_xy - np.asarray(task["goal"])).sum() + GOAL_BONUS + GOAL_SURVIVE * healthy - costs


@pytest.mark.parametrize("name", FAMILIES)
def test_check_env_and_protocol(name):
    env = gym.make(f"metarl/{name}-v0")
    check_env(env, skip_render_check=True)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == 200
    family = env.unwrapped
    assert isinstance(family, TaskFamily)
    tasks = family.sample_tasks(4, np.random.default_rng(0))
    assert tasks == family.sample_tasks(4, np.random.default_rng(0))
    family.set_task(tasks[1])
    _, info = env.reset(seed=0)  # no options: the task persists
    assert info["task"] == tasks[1] == family.task
    _, info = env.reset(options={"task": tasks[2]})
    assert info["task"] == tasks[2]
    with pytest.raises(ValueError):
        family.set_task({"nonsense": 1})


@pytest.mark.parametrize("name", FAMILIES)
def test_reward_equals_the_formula_from_simulator_state(name):
    env = gym.make(f"metarl/{name}-v0")
    base = env.unwrapped
    rng = np.random.default_rng(1)
    for task in base.sample_tasks(2, rng):
        env.reset(seed=int(rng.integers(1000)), options={"task": task})
        steps = 0
        while True:
            action = rng.uniform(-1, 1, size=env.action_space.shape).astype(np.float32)
            before = _root_xy(env)
            _, reward, terminated, truncated, info = env.step(action)
            after = _root_xy(env)
            healthy = float(not terminated)
            expected = expected_reward(
                name, task, before, after, base.dt, action, base.data.cfrc_ext, healthy, base.data.qpos[:2]
            )
            assert reward == pytest.approx(expected, rel=1e-6, abs=1e-6)
            assert info["x_velocity"] == pytest.approx((after[0] - before[0]) / base.dt)
            terms = [k for k in info if k.startswith("reward_")]
            assert sum(info[k] for k in terms) == pytest.approx(reward, abs=1e-6), terms
            assert info["task"] == task
            steps += 1
            if terminated or truncated:
                break
        assert steps == 200 or (terminated and "Ant" in name)


def test_constructor_kwargs_are_kept():
    env = gym.make("metarl/HalfCheetahVel-v0", ctrl_cost_weight=0.2, frame_skip=2, task={"velocity": 0.5})
    assert env.unwrapped.dt == pytest.approx(0.02)
    env.reset(seed=0)
    action = np.ones(6, np.float32)
    _, reward, _, _, info = env.step(action)
    assert info["reward_ctrl"] == pytest.approx(-0.2 * 6)
    assert reward == pytest.approx(-abs(info["x_velocity"] - 0.5) - 1.2)
    assert gym.make("metarl/AntGoal-v0").observation_space.shape == (107,)  # includes x-y


@pytest.mark.parametrize("name", FAMILIES)
def test_seeded_reset_is_deterministic(name):
    env = gym.make(f"metarl/{name}-v0")
    first, _ = env.reset(seed=7)
    again, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


@pytest.mark.parametrize("name", FAMILIES)
def test_task_sampling_uses_only_the_generator_and_streams_differ(name):
    family = gym.make(f"metarl/{name}-v0").unwrapped
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    train = [t for it in range(3) for t in sample_train_tasks(family, 10, seed=1, iteration=it)]
    test = sample_test_tasks(family, 30, seed=1)
    assert np.array_equal(np.random.get_state()[1], state)
    assert train != test
    if name.endswith("Vel"):
        low, high = family.VELOCITY_RANGE
        assert all(low <= t["velocity"] <= high for t in train + test)
        assert not {t["velocity"] for t in train} & {t["velocity"] for t in test}
    elif name.endswith("Dir"):
        assert {t["direction"] for t in train + test} == {-1, 1}
    else:
        assert all(-3 <= c <= 3 for t in train + test for c in t["goal"])
        assert not {tuple(t["goal"]) for t in train} & {tuple(t["goal"]) for t in test}


@pytest.mark.parametrize(
    ("name", "mode"),
    [(name, mode) for name in FAMILIES for mode in ("sync", "vector_entry_point")]
    + [("HalfCheetahVel", "async"), ("AntGoal", "async")],
)
def test_vector_env_sub_envs_keep_their_tasks_across_autoresets(name, mode):
    num_envs = 3
    vector = gym.make_vec(
        f"metarl/{name}-v0", num_envs=num_envs, vectorization_mode=mode, max_episode_steps=7
    )
    try:
        family = gym.make(f"metarl/{name}-v0").unwrapped
        tasks = family.sample_tasks(num_envs, np.random.default_rng(3))
        if name.endswith("Dir"):
            tasks = [{"direction": 1}, {"direction": -1}, {"direction": 1}]
        vector.set_attr("task", tasks)
        vector.reset(seed=0)
        rng = np.random.default_rng(4)
        resetting = np.zeros(num_envs, bool)
        checked = 0
        for _ in range(20):  # two autoresets per sub-env
            actions = rng.uniform(-1, 1, size=vector.action_space.shape).astype(np.float32)
            _, rewards, terminated, truncated, info = vector.step(actions)
            for i in range(num_envs):
                if resetting[i]:
                    continue
                ctrl = (CHEETAH_CTRL if "Cheetah" in name else ANT_CTRL) * np.sum(np.square(actions[i]))
                v_x = info["x_velocity"][i]
                if name.endswith("Vel"):
                    task_term = -abs(v_x - tasks[i]["velocity"])
                elif name.endswith("Dir"):
                    task_term = tasks[i]["direction"] * v_x
                else:
                    xy = np.array([info["x_position"][i], info["y_position"][i]])
                    task_term = -np.abs(xy - np.asarray(tasks[i]["goal"])).sum() + GOAL_BONUS
                other = -ctrl + (
                    info["reward_contact"][i] + info["reward_survive"][i] if "Ant" in name else 0.0
                )
                assert rewards[i] == pytest.approx(task_term + other, rel=1e-5, abs=1e-5), (i, tasks[i])
                checked += 1
            resetting = terminated | truncated
        assert checked >= 3 * 16
        assert list(vector.get_attr("task")) == tasks
    finally:
        vector.close()


@pytest.mark.parametrize("name", ["AntVel", "AntDir", "AntGoal"])
def test_ant_terminates_when_unhealthy_without_the_survive_bonus(name):
    env = gym.make(f"metarl/{name}-v0", healthy_z_range=(0.2, 0.3))  # the ant starts higher than 0.3
    env.reset(seed=0)
    before = _root_xy(env)
    action = np.zeros(8, np.float32)
    _, reward, terminated, _, info = env.step(action)
    base = env.unwrapped
    assert terminated and info["reward_survive"] == 0.0
    task = base.task
    expected = expected_reward(
        name, task, before, _root_xy(env), base.dt, action, base.data.cfrc_ext, 0.0, base.data.qpos[:2]
    )
    assert reward == pytest.approx(expected, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("name, observe_task", [(name, False) for name in FAMILIES] + [("AntGoal", True)])
def test_fast_vector_env_equals_single_envs_and_steps_only_given_slots(name, observe_task):
    """The registered vector env (bare MjData per sub-env, batched rewards) reproduces
    independent single envs exactly, and `step_slots` leaves the other sub-envs alone;
    also with the task in the observation (the oracle)."""
    num_envs, seeds = 3, [11, 12, 13]
    kwargs = {"observe_task": True} if observe_task else {}
    vector = gym.make_vec(
        f"metarl/{name}-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )
    singles = [gym.make(f"metarl/{name}-v0", **kwargs) for _ in range(num_envs)]
    tasks = singles[0].unwrapped.sample_tasks(num_envs, np.random.default_rng(5))
    vector.set_attr("task", tasks)
    obs, _ = vector.reset(seed=seeds)
    single_obs = [env.reset(seed=s, options={"task": t})[0] for env, s, t in zip(singles, seeds, tasks)]
    assert np.array_equal(obs, np.stack(single_obs))
    rng = np.random.default_rng(6)
    step_slots = vector.unwrapped.step_slots
    for t in range(30):
        actions = rng.uniform(-1, 1, (num_envs, *singles[0].action_space.shape)).astype(np.float32)
        slots = np.array([0, 2]) if t % 3 == 2 else np.arange(num_envs)  # sub-env 1 sometimes waits
        obs, rewards, terminated, info = step_slots(actions[slots], slots)
        for row, slot in enumerate(slots):
            o, r, term, _, single_info = singles[slot].step(actions[slot])
            assert np.array_equal(obs[row], o) and rewards[row] == r and terminated[row] == term
            for key, value in info.items():
                assert value[row] == single_info[key], key
    if observe_task:  # the goal rides along at the end of every observation
        assert np.array_equal(obs[:, -2:], np.array([tasks[s]["goal"] for s in slots]))
    with pytest.raises(ValueError, match="actions of shape"):
        step_slots(np.zeros((2, 1), np.float32), np.arange(2))


@pytest.mark.parametrize("name", FAMILIES)
def test_observe_task_appends_the_task_vector(name):
    plain, oracle = gym.make(f"metarl/{name}-v0"), gym.make(f"metarl/{name}-v0", observe_task=True)
    task = plain.unwrapped.sample_tasks(1, np.random.default_rng(0))[0]
    obs, _ = plain.reset(seed=3, options={"task": task})
    oracle_obs, _ = oracle.reset(seed=3, options={"task": task})
    vector = oracle.unwrapped.task_vector(task)
    assert oracle.observation_space.shape == (obs.shape[0] + len(vector),)
    assert np.array_equal(oracle_obs, np.concatenate([obs, vector]))
    action = np.full(plain.action_space.shape, 0.3, np.float32)
    assert np.array_equal(oracle.step(action)[0], np.concatenate([plain.step(action)[0], vector]))
