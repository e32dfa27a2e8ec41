"""The rollout worker every sampler backend runs.

A worker owns a vector env over its share of (task, episode) slots (the family's own
batched one, stepping only running episodes where it can; gymnasium's sync vector env for
other ids) and a copy of the policy. It runs whole episodes, one batched policy forward
per step over all its slots, each slot with the (adapted) parameters of its task. All
randomness of a slot (its reset seed and its action noise) comes from that slot's own
seed, so the episodes do not depend on how slots are split among workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec, load_env_creator
from torch.distributions import Normal

from metarl.policies import GaussianMLPPolicy, RecurrentPolicy
from metarl.tasks import Task


class BatchedSlots:
    """All slots in one vector env, one sub-env per slot.

    If the vector env has ``step_slots(actions, slots)`` (the MuJoCo families'
    `LocomotionVectorEnv`), only slots whose episode is running are stepped; otherwise
    (Navigation2D's numpy env, or gymnasium's sync vector env for a family without a
    vector env of its own) every sub-env steps every time and the caller ignores finished
    ones. A set of slots can serve calls with fewer slots (`capacity`).
    """

    def __init__(
        self, spec: EnvSpec, env_kwargs: dict[str, Any], num_slots: int, horizon: int, mode: str
    ) -> None:
        if mode == "sync":
            self.env = gym.make_vec(
                spec,
                num_envs=num_slots,
                vectorization_mode="sync",
                vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP},
                max_episode_steps=horizon,
                disable_env_checker=True,
                **env_kwargs,
            )
        else:
            self.env = gym.make_vec(
                spec,
                num_envs=num_slots,
                vectorization_mode=mode,
                **{**env_kwargs, "max_episode_steps": horizon},
            )
        self.action_space = self.env.single_action_space
        self._step_slots = getattr(self.env.unwrapped, "step_slots", None)

    @property
    def capacity(self) -> int:
        return self.env.num_envs

    def reset(self, tasks: list[Task], seeds: np.ndarray) -> np.ndarray:
        """Start episodes in the first len(tasks) sub-envs: observations [len(tasks), ...]."""
        num_slots, spare = len(tasks), self.capacity - len(tasks)
        self.env.set_attr("task", list(tasks) + [tasks[0]] * spare)
        in_use = np.arange(self.capacity) < num_slots
        seeds = [int(s) for s in seeds] + [None] * spare
        return self.env.reset(seed=seeds, options={"reset_mask": in_use})[0][:num_slots]

    def restart(self, slots: np.ndarray) -> np.ndarray:
        """Start a new episode, same task, in sub-envs `slots` [k] (their generators go on
        unseeded): their first observations [k, ...]."""
        mask = np.zeros(self.capacity, bool)
        mask[slots] = True
        return self.env.reset(options={"reset_mask": mask})[0][slots]

    def step(self, actions: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, ...]:
        """Step `slots` [k] with actions [k, ...]: (observations, rewards, terminated,
        truncated, success), each [k, ...]. Truncated: the env ended the episode itself (its
        own length, e.g. a bandit's pulls, shorter than the sampler's horizon). Success: the
        env's ``info["success"]`` (False where it reports none)."""
        if self._step_slots is not None:  # its time limit is the horizon: never truncates first
            obs, reward, terminated, info = self._step_slots(actions, slots)
            success = np.asarray(info.get("success", np.zeros(len(slots))), bool)
            return obs, reward, terminated, np.zeros(len(slots), bool), success
        all_actions = np.zeros((self.env.num_envs, *actions.shape[1:]), actions.dtype)
        all_actions[slots] = actions
        obs, reward, terminated, truncated, info = self.env.step(all_actions)
        success = np.asarray(info.get("success", np.zeros(self.env.num_envs)), bool)
        return (
            obs[slots],
            np.asarray(reward)[slots],
            np.asarray(terminated, bool)[slots],
            np.asarray(truncated, bool)[slots],
            success[slots],
        )

    def close(self) -> None:
        self.env.close()


def episodes_in_sequence(spec: EnvSpec) -> bool:
    """Whether the family's vector env asks for a task's episodes to be run one after another
    in one sub-env (its class attribute ``episodes_in_sequence``; Meta-World's large envs)."""
    creator = spec.vector_entry_point
    if isinstance(creator, str):
        creator = load_env_creator(creator)
    return bool(getattr(creator, "episodes_in_sequence", False))


def make_slots(spec: EnvSpec, env_kwargs: dict[str, Any], num_slots: int, horizon: int) -> BatchedSlots:
    """Envs for `num_slots` slots: the family's batched vector env if its spec has one
    (``vector_entry_point``), else gymnasium's synchronous vector env of single envs.

    Episodes are truncated at `horizon` steps, whatever the registered time limit.
    """
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    return BatchedSlots(spec, env_kwargs, num_slots, horizon, mode)


def to_env_actions(actions: np.ndarray, space: gym.spaces.Box) -> np.ndarray:
    """Map policy actions in [-1, 1] affinely onto the Box bounds, then clip to them.

    actions: [slots, *action_shape]. This is rllab's ``normalize`` convention (used by the
    MAML paper's code): a unit-scale Gaussian policy explores the whole action range
    whatever its units. Unbounded dimensions pass through unchanged.
    """
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    bounded = np.isfinite(low) & np.isfinite(high)
    scaled = np.where(bounded, low + (actions + 1.0) * 0.5 * (high - low), actions)
    return np.clip(scaled, low, high).astype(space.dtype)


def episode_arrays_layout(
    num_slots: int, horizon: int, obs_dim: int, act_dim: int
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of each episode array for `num_slots` slots (see `Episodes`)."""
    f32 = np.dtype(np.float32)
    return {
        "observations": ((num_slots, horizon, obs_dim), f32),
        "actions": ((num_slots, horizon, act_dim), f32),
        "rewards": ((num_slots, horizon), f32),
        "mask": ((num_slots, horizon), f32),
        "terminated": ((num_slots,), np.dtype(bool)),
        "success": ((num_slots,), np.dtype(bool)),
    }


@dataclass
class RolloutRequest:
    """One worker's share of a sample call.

    tasks: the tasks it serves; params: each [len(tasks), ...], the parameters per task;
    slot_task: [slots] index into `tasks`; slot_episode: [slots] the slot's episode index
    within its task (< episodes_per_task); slot_seeds: [slots, 2] uint32 (env reset seed,
    action-noise seed).
    """

    tasks: list[Task]
    params: dict[str, np.ndarray]
    slot_task: np.ndarray
    slot_episode: np.ndarray
    episodes_per_task: int
    slot_seeds: np.ndarray


class _SlotWorker:
    """What every worker kind shares: its policy (rebuilt from a spec), its envs (built once,
    rebuilt only to grow) and closing them. Constructed once per worker, reused every call."""

    POLICY: type[GaussianMLPPolicy] | type[RecurrentPolicy]

    def __init__(
        self,
        env_spec: EnvSpec | bytes | str,
        env_kwargs: dict[str, Any],
        policy_spec: dict[str, Any],
        horizon: int,
        rescale_actions: bool = True,
    ) -> None:
        # the family's gymnasium spec, as the sampler sends it (cloudpickle bytes): the worker
        # builds envs from it, whatever this process has imported or registered (an id is
        # looked up in this process's registry)
        if isinstance(env_spec, bytes):
            env_spec = cloudpickle.loads(env_spec)
        self.env_spec = gym.spec(env_spec) if isinstance(env_spec, str) else env_spec
        self.env_kwargs, self.horizon = dict(env_kwargs), horizon
        self.rescale_actions = rescale_actions
        self.policy = self.POLICY(**policy_spec)
        self.sequential = episodes_in_sequence(self.env_spec)
        self._slots: BatchedSlots | None = None

    def _env(self, num_slots: int) -> BatchedSlots:
        """Envs for at least `num_slots` slots: one set, rebuilt only to grow."""
        if self._slots is None or self._slots.capacity < num_slots:
            self.close()
            self._slots = make_slots(self.env_spec, self.env_kwargs, num_slots, self.horizon)
        return self._slots

    def close(self) -> None:
        if self._slots is not None:
            self._slots.close()
            self._slots = None


class RolloutWorker(_SlotWorker):
    """Runs episodes for a share of slots, each with its task's (adapted) parameters."""

    POLICY = GaussianMLPPolicy

    def rollout(
        self, request: RolloutRequest, out: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Run one episode per slot; write them into `out` (arrays as laid out by
        `episode_arrays_layout`, e.g. views of shared memory) or new arrays, and return them.

        Every step does one batched policy forward over the slots' tasks, laid out as
        [tasks, episodes_per_task, obs_dim] whatever this worker's share: a slot's action
        is then computed by the same kernels, hence the same bits, however slots are split
        among workers. Only tasks with a running episode are evaluated, only running
        episodes are stepped. For a family whose vector env runs episodes in sequence
        (`episodes_in_sequence`), slots run in waves, wave k holding episode k of every task,
        each task in the same sub-env: the same episodes, with one env per task.
        """
        policy, horizon = self.policy, self.horizon
        num_slots, num_tasks = len(request.slot_task), len(request.tasks)
        slot_task, slot_episode = request.slot_task, request.slot_episode
        if self.sequential:  # wave k: episode k of every task, one sub-env per task
            waves = [np.flatnonzero(slot_episode == k) for k in np.unique(slot_episode)]
        else:
            waves = [np.arange(num_slots)]
        env = self._env(max(len(wave) for wave in waves))
        sub_env = np.zeros(num_slots, np.int64)  # each slot's sub-env within its wave
        for wave in waves:
            sub_env[wave] = np.arange(len(wave))
        obs_dim = int(np.prod(env.env.single_observation_space.shape))
        out = (
            out
            if out is not None
            else {
                name: np.empty(shape, dtype)
                for name, (shape, dtype) in episode_arrays_layout(
                    num_slots, horizon, obs_dim, policy.act_dim
                ).items()
            }
        )
        out["terminated"].fill(False)  # steps are written as they happen, padding when episodes end
        out["success"].fill(False)
        noise = np.stack(
            [
                policy.draw_noise(np.random.default_rng(int(seed)), (horizon, *policy.noise_shape()))
                for seed in request.slot_seeds[:, 1]
            ]
        )
        # copies: the arrays may be read-only (Ray's object store)
        params = {name: torch.tensor(value) for name, value in request.params.items()}
        obs_grid = torch.zeros(num_tasks, request.episodes_per_task, obs_dim)
        obs = np.zeros((num_slots, obs_dim), np.float32)
        for wave in waves:
            obs[wave] = np.asarray(
                env.reset([request.tasks[i] for i in slot_task[wave]], request.slot_seeds[wave, 0]),
                np.float32,
            ).reshape(len(wave), -1)
            running = wave  # slots whose episode is still going
            live_tasks: np.ndarray | None = None
            ended = np.ones(1, bool)
            for t in range(horizon):
                if ended.any():  # index arrays change only when episodes end
                    every = len(running) == num_slots
                    rows_of = slice(None) if every else running  # cheaper than fancy indexing
                    run_task, run_episode = slot_task[running], slot_episode[running]
                    tasks_now = np.unique(run_task)
                    if live_tasks is None or not np.array_equal(tasks_now, live_tasks):
                        live_tasks = tasks_now
                        all_live = len(live_tasks) == num_tasks
                        live_params = params if all_live else {k: v[live_tasks] for k, v in params.items()}
                        task_row = np.zeros(num_tasks, np.int64)
                        task_row[live_tasks] = np.arange(len(live_tasks))
                        live_index = torch.from_numpy(live_tasks)
                    grid_task, grid_episode = torch.from_numpy(run_task), torch.from_numpy(run_episode)
                    rows, cols = torch.from_numpy(task_row[run_task]), grid_episode
                    run_noise = torch.from_numpy(noise[rows_of])
                    run_sub_envs = sub_env[running]
                obs_grid[grid_task, grid_episode] = torch.from_numpy(obs[rows_of])
                with torch.no_grad():
                    dist = policy.distribution(obs_grid if all_live else obs_grid[live_index], live_params)
                    picked = Normal(dist.loc[rows, cols], dist.scale[rows, cols], validate_args=False)
                    action = policy.sample_with_noise(picked, run_noise[:, t]).numpy()
                out["observations"][rows_of, t] = obs[rows_of]
                out["actions"][rows_of, t] = action
                out["mask"][rows_of, t] = 1.0
                env_action = to_env_actions(action, env.action_space) if self.rescale_actions else action
                next_obs, reward, terminated, truncated, success = env.step(env_action, run_sub_envs)
                obs[rows_of] = np.asarray(next_obs, np.float32).reshape(len(running), -1)
                out["rewards"][rows_of, t] = reward
                out["success"][rows_of] |= success
                ended = terminated | truncated
                if ended.any():
                    finished = running[ended]
                    out["terminated"][finished] = terminated[ended]
                    for name in ("observations", "actions", "rewards", "mask"):
                        out[name][finished, t + 1 :] = 0  # padding after the last step
                    running = running[~ended]
                    if not len(running):
                        break
        return out


def trial_arrays_layout(
    num_slots: int, episodes_per_trial: int, horizon: int, obs_dim: int, stored_action_dim: int
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of each trial array: one trial per slot, [slots, episodes, time, ...]."""
    f32 = np.dtype(np.float32)
    grid = (num_slots, episodes_per_trial, horizon)
    return {
        "observations": ((*grid, obs_dim), f32),
        "actions": ((*grid, stored_action_dim), f32),
        "rewards": (grid, f32),
        "mask": (grid, f32),
        "terminated": ((num_slots, episodes_per_trial), np.dtype(bool)),
        "success": ((num_slots, episodes_per_trial), np.dtype(bool)),
    }


@dataclass
class TrialRequest:
    """One worker's share of a trial sample call: one trial (and task) per slot.

    tasks: [slots] the task of each trial; params: the policy's parameters (shared by all
    trials); slot_seeds: [slots, 2] uint32 (env seed of the trial's first reset, action-noise
    seed).
    """

    tasks: list[Task]
    params: dict[str, np.ndarray]
    episodes_per_trial: int
    slot_seeds: np.ndarray

    @property
    def slot_task(self) -> np.ndarray:  # one slot per task: the sampler's row bookkeeping
        return np.arange(len(self.tasks))


class TrialWorker(_SlotWorker):
    """Runs RL2 trials: `episodes_per_trial` episodes back to back on one task per slot,
    with the GRU's hidden state carried across the episodes of a trial.

    Every step does one GRU step over the running slots. A slot's randomness comes from its
    own seeds; the GRU's batched kernels may round differently for other batch sizes, so
    trials are reproducible for a given number of workers.
    """

    POLICY = RecurrentPolicy

    def rollout(
        self, request: TrialRequest, out: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Run one trial per slot into `out` (laid out by `trial_arrays_layout`) or new arrays."""
        policy, horizon, episodes = self.policy, self.horizon, request.episodes_per_trial
        num_slots = len(request.tasks)
        env = self._env(num_slots)
        obs = np.asarray(env.reset(request.tasks, request.slot_seeds[:, 0]), np.float32).reshape(
            num_slots, -1
        )
        if out is None:
            layout = trial_arrays_layout(num_slots, episodes, horizon, obs.shape[1], policy.stored_action_dim)
            out = {name: np.empty(shape, dtype) for name, (shape, dtype) in layout.items()}
        for array in out.values():
            array.fill(0)  # padding stays zero; the arrays may be reused shared memory
        noise = np.stack(
            [
                policy.draw_noise(
                    np.random.default_rng(int(seed)), (episodes * horizon, *policy.noise_shape())
                )
                for seed in request.slot_seeds[:, 1]
            ]
        )
        policy.load_state_dict({name: torch.tensor(value) for name, value in request.params.items()})
        hidden = policy.initial_hidden(num_slots)
        previous = torch.zeros(num_slots, policy.input_dim - policy.obs_dim)  # policy.previous_step_inputs
        episode = np.zeros(num_slots, np.int64)
        t = np.zeros(num_slots, np.int64)  # step within the current episode
        steps_taken = np.zeros(num_slots, np.int64)  # within the trial: the noise index
        running = np.arange(num_slots)
        while len(running):
            inputs = torch.cat([torch.from_numpy(obs[running]), previous[running]], dim=1)
            with torch.no_grad():
                dist, hidden_now = policy.step(inputs, hidden[running])
                action = policy.sample_with_noise(
                    dist, torch.from_numpy(noise[running, steps_taken[running]])
                )
            hidden[running] = hidden_now
            k, step = episode[running], t[running]
            out["observations"][running, k, step] = obs[running]
            out["actions"][running, k, step] = action.numpy()
            out["mask"][running, k, step] = 1.0
            env_action = self._env_action(action.numpy(), env)
            acted_in = torch.from_numpy(obs[running])
            next_obs, reward, terminated, truncated, success = env.step(env_action, running)
            out["rewards"][running, k, step] = reward
            out["success"][running, k] |= success
            obs[running] = np.asarray(next_obs, np.float32).reshape(len(running), -1)
            t[running] += 1
            steps_taken[running] += 1
            ended = terminated | truncated | (t[running] >= horizon)
            previous[running] = policy.previous_step_inputs(
                acted_in,
                action,
                torch.as_tensor(np.asarray(reward, np.float32)),
                torch.from_numpy(ended.astype(np.float32)),
            )
            if ended.any():
                finished = running[ended]
                out["terminated"][finished, episode[finished]] = terminated[ended]
                episode[finished] += 1
                t[finished] = 0
                going_on = finished[episode[finished] < episodes]
                if len(going_on):
                    obs[going_on] = np.asarray(env.restart(going_on), np.float32).reshape(len(going_on), -1)
                running = running[episode[running] < episodes]
        return out

    def _env_action(self, action: np.ndarray, env: BatchedSlots) -> np.ndarray:
        if self.policy.discrete:
            return action[:, 0].astype(np.int64)
        return to_env_actions(action, env.action_space) if self.rescale_actions else action


WORKERS = {"episodes": RolloutWorker, "trials": TrialWorker}


def make_worker(kind: str, *worker_args: Any) -> RolloutWorker | TrialWorker:
    """The worker of `kind` ("episodes": MAML's per-task episodes; "trials": RL2 trials)."""
    return WORKERS[kind](*worker_args)
