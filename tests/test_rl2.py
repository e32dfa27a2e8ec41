"""RL2: trial sampling with a carried hidden state, whole-trial GRU forward, learning, resume."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from metarl.agents.rl2 import Trials
from torch.distributions import Categorical

from metarl.agent import build
from metarl.checkpoint import CheckpointError, load_checkpoint
from metarl.config import config_from_dict, load_config
from metarl.episodes import Episodes
from metarl.policies import RecurrentPolicy
from metarl.returns import discounted_returns
from metarl.sampling.sampler import Sampler
from metarl.sampling.worker import TrialRequest, TrialWorker
from metarl.tasks import sample_test_tasks, sample_train_tasks, task_features
from metarl.training import train

MDP = {"num_states": 4, "num_actions": 3, "episode_length": 4}


class CountingPolicy(RecurrentPolicy):
    """Scripted: the hidden state counts the steps of the trial, and the action at trial
    step s (from 0) is s mod act_dim, so the actions reveal what the hidden state held."""

    def step(self, inputs, hidden):
        self.inputs_seen.append(inputs.clone())
        hidden = hidden + 1
        logits = 50.0 * torch.nn.functional.one_hot((hidden[:, 0].long() - 1) % self.act_dim, self.act_dim)
        return Categorical(logits=logits.float()), hidden


def test_trial_sampler_carries_the_hidden_state_across_episodes_and_resets_it_between_trials():
    spec = {"obs_dim": 4, "act_dim": 3, "discrete": True, "hidden_size": 8}
    worker = TrialWorker("metarl/TabularMDP-v0", MDP, spec, horizon=4)
    worker.policy = CountingPolicy(**spec)
    worker.policy.inputs_seen = []
    family = worker._env(1).env.unwrapped
    tasks = family.sample_tasks(2, np.random.default_rng(0))
    params = {k: v.numpy() for k, v in worker.policy.state_dict().items()}
    for call in range(2):  # a second call starts new trials: the count starts at 0 again
        seeds = np.array([[1, 2], [3, 4]], np.uint32) + call
        out = worker.rollout(TrialRequest(tasks, params, episodes_per_trial=3, slot_seeds=seeds))
        trial_step = np.arange(3)[:, None] * 4 + np.arange(4)  # [episode, t]
        for slot in range(2):
            np.testing.assert_array_equal(out["actions"][slot, :, :, 0], trial_step % 3)
        assert out["mask"].all() and out["observations"][:, :, 0].argmax(-1).tolist() == [[0, 0, 0]] * 2
    # the inputs: previous action one-hot, previous reward, and the done flag exactly on the
    # first step of the second and third episodes
    inputs = torch.stack(worker.policy.inputs_seen[-12:], dim=1)  # [slots, 12, input_dim]
    rewards = out["rewards"].reshape(2, 12)
    actions = out["actions"].reshape(2, 12)
    np.testing.assert_array_equal(inputs[:, 1:, 4:7].argmax(-1).numpy(), actions[:, :-1])
    np.testing.assert_allclose(inputs[:, 1:, 7].numpy(), rewards[:, :-1])
    assert inputs[:, 0, 4:].abs().sum() == 0
    assert inputs[:, :, 8].nonzero()[:, 1].tolist() == [4, 8, 4, 8]


@pytest.mark.parametrize(
    "reward_by_action, state_action_inputs, observation_heads",
    [(False, False, False), (True, False, False), (True, True, False), (True, True, True)],
)
def test_whole_trial_forward_equals_step_by_step_and_handles_early_ends(
    reward_by_action, state_action_inputs, observation_heads
):
    """Trials.from_episodes puts each trial's valid steps first in time order; the one-call
    GRU forward over them equals stepping the GRU through the trial."""
    torch.manual_seed(0)
    policy = RecurrentPolicy(
        2,
        3,
        True,
        16,
        generator=torch.Generator().manual_seed(1),
        reward_by_action=reward_by_action,
        state_action_inputs=state_action_inputs,
        observation_heads=observation_heads,
    )
    mask = torch.ones(2, 2, 5)
    mask[0, 0, 3:] = 0  # trial 0's first episode ends after 3 steps
    episodes = Episodes(
        observations=torch.randn(2, 2, 5, 2) * mask[..., None],
        actions=torch.randint(0, 3, (2, 2, 5, 1)).float() * mask[..., None],
        rewards=torch.randn(2, 2, 5) * mask,
        mask=mask,
        terminated=torch.tensor([[True, False], [False, False]]),
        tasks=[{}, {}],
    )
    trials = Trials.from_episodes(episodes)
    assert trials.mask[0].tolist() == [1.0] * 8 + [0.0] * 2
    assert trials.episode_starts[0].nonzero().flatten().tolist() == [0, 3]
    assert trials.episode_starts[1].nonzero().flatten().tolist() == [0, 5]
    torch.testing.assert_close(trials.observations[0, 3:8], episodes.observations[0, 1])
    inputs = policy.trial_inputs(trials.observations, trials.actions, trials.rewards, trials.episode_starts)
    dist, _ = policy.forward_trials(inputs)
    hidden, stepped = policy.initial_hidden(2), []
    for t in range(10):
        step_dist, hidden = policy.step(inputs[:, t], hidden)
        stepped.append(step_dist.logits)
    torch.testing.assert_close(torch.stack(stepped, 1), dist.logits, atol=1e-6, rtol=1e-5)


def test_reward_by_action_puts_each_reward_in_the_slot_of_the_arm_that_earned_it():
    """The GRUs of a `reward_by_action` policy read (s, a, r, d) plus previous one-hot arm x
    previous reward; the spec carries the option to the sampler's workers and to configs."""
    plain = RecurrentPolicy(1, 3, True, 8)
    policy = RecurrentPolicy(1, 3, True, 8, reward_by_action=True)
    arms = torch.tensor([[[2.0], [0.0], [2.0], [1.0]]])  # one trial of 4 pulls
    rewards = torch.tensor([[1.0, 0.0, 0.5, 1.0]])
    starts = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    inputs = policy.trial_inputs(torch.zeros(1, 4, 1), arms, rewards, starts)
    torch.testing.assert_close(plain.gru_inputs(inputs), inputs)  # off: unchanged
    extra = policy.gru_inputs(inputs)[0, :, inputs.shape[-1] :]
    expected = [[0, 0, 0], [0, 0, 1.0], [0, 0, 0], [0, 0, 0.5]]  # pull t sees pull t-1's arm and reward
    torch.testing.assert_close(extra, torch.tensor(expected))
    assert policy.gru.input_size == policy.value_gru.input_size == plain.gru.input_size + 3
    rebuilt = RecurrentPolicy(**policy.spec())
    rebuilt.load_state_dict(policy.state_dict())  # the same shapes in a worker
    assert rebuilt.reward_by_action
    config = load_config("rl2_trpo_bandit_k5_n10", ["rnn_reward_by_action=true"])
    agent, _, sampler = build(config)
    sampler.close()
    assert agent.policy.reward_by_action


class RecordingPolicy(RecurrentPolicy):
    """A real GRU policy that keeps the inputs the sampler hands to each step."""

    def step(self, inputs, hidden):
        self.inputs_seen.append(inputs.clone())
        return super().step(inputs, hidden)


def test_state_action_inputs_match_the_sampler_and_put_each_reward_in_its_pairs_slot():
    """With `state_action_inputs` a step also reads the observation the previous action was
    taken in, across episode boundaries too; the sampler hands the policy exactly what
    `trial_inputs` rebuilds for training, and the GRUs read the previous (state, action)
    pair's one-hot and its reward in that pair's slot. The spec carries the option to the
    workers and the config to `build`."""
    spec = {"obs_dim": 4, "act_dim": 3, "discrete": True, "hidden_size": 8, "state_action_inputs": True}
    worker = TrialWorker("metarl/TabularMDP-v0", MDP, spec, horizon=4)
    worker.policy = RecordingPolicy(**spec)
    worker.policy.inputs_seen = []
    tasks = worker._env(1).env.unwrapped.sample_tasks(2, np.random.default_rng(0))
    params = {k: v.numpy() for k, v in RecurrentPolicy(**spec).state_dict().items()}
    seeds = np.array([[1, 2], [3, 4]], np.uint32)
    out = worker.rollout(TrialRequest(tasks, params, episodes_per_trial=3, slot_seeds=seeds))
    episodes = Episodes(
        **{name: torch.from_numpy(out[name]) for name in ("observations", "actions", "rewards", "mask")},
        terminated=torch.from_numpy(out["terminated"]),
        tasks=tasks,
    )
    trials = Trials.from_episodes(episodes)
    policy = worker.policy
    inputs = policy.trial_inputs(trials.observations, trials.actions, trials.rewards, trials.episode_starts)
    torch.testing.assert_close(torch.stack(policy.inputs_seen, dim=1), inputs)
    assert inputs.shape[-1] == policy.input_dim == 4 + 3 + 2 + 4
    states = trials.observations.argmax(-1)  # [trials, 12]
    actions = trials.actions[..., 0].long()
    extra = policy.gru_inputs(inputs)[..., inputs.shape[-1] :]  # [trials, 12, 2 * 4 * 3]
    pairs, paid = extra[..., :12], extra[..., 12:]
    assert pairs[:, 0].abs().sum() == 0 and paid[:, 0].abs().sum() == 0  # nothing before the first step
    expected_pair = states[:, :-1] * 3 + actions[:, :-1]  # step t reads step t-1's pair
    assert (pairs[:, 1:].sum(-1) == 1).all()
    assert pairs[:, 1:].argmax(-1).tolist() == expected_pair.tolist()
    torch.testing.assert_close(paid[:, 1:].sum(-1), trials.rewards[:, :-1])
    torch.testing.assert_close(paid[:, 1:], pairs[:, 1:] * trials.rewards[:, :-1, None])
    assert policy.gru.input_size == policy.value_gru.input_size == 4 + 3 + 2 + 4 + 24
    assert RecurrentPolicy(**policy.spec()).state_action_inputs
    config = load_config("rl2_trpo_tabular_mdp_n10", ["rnn_state_action_inputs=true"])
    agent, _, sampler = build(config)
    sampler.close()
    assert agent.policy.state_action_inputs and agent.policy.input_dim == 10 + 5 + 2 + 10


def test_observation_heads_read_the_gru_features_through_a_weight_of_the_current_state():
    """With observation_heads, for a one-hot observation e_s the logits and the value are
    the plain heads' plus features @ W[s]; the other weights are drawn as without them."""
    num_states, num_actions = 4, 3

    def build_policy(observation_heads: bool) -> RecurrentPolicy:
        generator = torch.Generator().manual_seed(0)
        return RecurrentPolicy(
            num_states, num_actions, True, 8, generator=generator, observation_heads=observation_heads
        )

    plain, with_heads = build_policy(False), build_policy(True)
    plain_weights = dict(plain.named_parameters())
    for name, weight in with_heads.named_parameters():
        if name in ("action_head_by_obs", "value_head_by_obs"):
            assert weight.shape == (num_states, 8, num_actions if name.startswith("action") else 1)
        else:
            assert torch.equal(weight, plain_weights[name]), name
    assert "observation_heads" in with_heads.spec() and with_heads.spec()["observation_heads"]
    with torch.no_grad():
        with_heads.action_head_by_obs.normal_(generator=torch.Generator().manual_seed(2))
        with_heads.value_head_by_obs.normal_(generator=torch.Generator().manual_seed(3))
    states = torch.randint(0, num_states, (5, 7), generator=torch.Generator().manual_seed(4))
    inputs = torch.randn(5, 7, with_heads.input_dim, generator=torch.Generator().manual_seed(5))
    inputs[..., :num_states] = torch.nn.functional.one_hot(states, num_states).float()
    with torch.no_grad():
        dist, values = with_heads.forward_trials(inputs)
        features, _ = with_heads.gru(with_heads.gru_inputs(inputs))
        value_features, _ = with_heads.value_gru(with_heads.gru_inputs(inputs))
        logits = with_heads.action_head(features) + torch.einsum(
            "nth,ntha->nta", features, with_heads.action_head_by_obs[states]
        )
        expected_values = with_heads.value_head(value_features)[..., 0] + torch.einsum(
            "nth,nth->nt", value_features, with_heads.value_head_by_obs[states][..., 0]
        )
    torch.testing.assert_close(dist.logits, torch.log_softmax(logits, -1))
    torch.testing.assert_close(values, expected_values)


def test_privileged_value_reads_the_task_and_predicts_what_the_history_cannot():
    """With `rnn_privileged_value` the value GRU also reads each trial's arm means (the policy
    does not). Fitted on the discounted returns of one batch of 10-pull bandit trials, it
    predicts held-out trials' returns from their first pull on, where the plain value (no
    history yet) can only learn the mean return."""
    errors = {}
    for privileged in (False, True):
        overrides = [
            f"rnn_privileged_value={str(privileged).lower()}",
            "sampler_backend=local",
            "rnn_hidden_size=16",
        ]
        agent, family, sampler = build(load_config("rl2_trpo_bandit_k5_n10", overrides))
        policy = agent.policy
        assert policy.value_task_dim == (5 if privileged else 0) and policy.gru.input_size == 1 + 5 + 2 + 5
        batches = []
        with sampler:
            for key, tasks in enumerate(
                (sample_train_tasks(family, 512, 1, 0), sample_test_tasks(family, 512, 1))
            ):
                trials = Trials.from_episodes(agent.sample(tasks, (0, key)), with_tasks=privileged)
                returns = discounted_returns(trials.rewards, trials.mask, 0.99)
                batches.append((agent.inputs(trials), trials.task_features, returns))
        if privileged:
            torch.testing.assert_close(
                batches[1][1], torch.tensor([t["means"] for t in sample_test_tasks(family, 512, 1)])
            )
            with pytest.raises(ValueError, match="task_features must be"):
                policy.values(batches[0][0])
            rebuilt = RecurrentPolicy(**policy.spec())  # a worker's copy loads the same shapes
            rebuilt.load_state_dict(policy.state_dict())
        optimizer = torch.optim.Adam(policy.value_parameters(), lr=1e-2)
        inputs, features, returns = batches[0]
        for _ in range(200):
            loss = ((policy.values(inputs, features) - returns) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        inputs, features, returns = batches[1]
        with torch.no_grad():
            errors[privileged] = float(((policy.values(inputs, features) - returns)[:, 0] ** 2).mean())
        if not privileged:  # both passes play the same trials: the policy GRU is drawn first
            first_return_variance = float(returns[:, 0].var())
    assert errors[False] > 0.9 * first_return_variance, errors  # the plain value knows nothing yet
    assert errors[True] < 0.75 * errors[False], errors


@pytest.mark.parametrize("agent_name", ["rl2_ppo", "rl2_trpo"])
def test_entropy_bonus_raises_the_policys_entropy_and_falls_on_its_schedule(agent_name):
    """With every advantage zero, the outer step's only push is the entropy bonus: with
    entropy_coef > 0 the step raises the policy's mean entropy (nats per step); at weight 0
    (the schedule's last iteration) it leaves the policy as it was. The weight falls linearly
    from entropy_coef to entropy_coef_final."""
    overrides = [f"agent={agent_name}", "sampler_backend=local", "rnn_hidden_size=16", "meta_iterations=11"]
    config = load_config("rl2_trpo_bandit_k5_n10", overrides + ["entropy_coef=0.05"])
    agent, family, sampler = build(config)
    with torch.no_grad():  # start away from the uniform policy, where the entropy is at its top
        agent.policy.action_head.bias.copy_(torch.tensor([2.0, 0.0, 0.0, 0.0, 0.0]))
    with sampler:
        trials = Trials.from_episodes(agent.sample(sample_train_tasks(family, 32, 1, 0), (0, 0)))
    agent.config.entropy_coef_final = 0.0
    assert [agent.entropy_weight(i) for i in (0, 5, 10, 20)] == pytest.approx([0.05, 0.025, 0.0, 0.0])
    agent.config.entropy_coef_final = None
    assert agent.entropy_weight(10) == 0.05

    inputs = agent.inputs(trials)
    zeros = torch.zeros_like(trials.rewards)

    def entropy_and_step(iteration: int) -> tuple[float, float]:
        """Mean entropy before and after one outer step with zero advantages."""
        with torch.no_grad():
            old_dist, values = agent.policy.forward_trials(inputs, trials.task_features)
            old_log_probs = agent.policy.log_prob(old_dist, trials.actions)
            before = float(agent.masked_mean(agent.policy.entropy(old_dist), trials.mask))
        agent.outer.step(agent, trials, inputs, old_dist, old_log_probs, zeros, values, iteration)
        with torch.no_grad():
            after = agent.policy.entropy(agent.policy.action_distribution(inputs))
            return before, float(agent.masked_mean(after, trials.mask))

    before, after = entropy_and_step(0)
    assert after > before + 1e-3, (before, after)
    agent.config.entropy_coef_final = 0.0
    agent.outer = type(agent.outer)(
        agent.config, agent.policy
    )  # PPO's Adam would carry the first step's momentum
    policy_weights = [p.detach().clone() for p in agent.policy.policy_parameters()]
    entropy_and_step(10)  # weight 0: no push on the policy (the value still fits its targets)
    for old, new in zip(policy_weights, agent.policy.policy_parameters()):
        torch.testing.assert_close(new.detach(), old, rtol=0, atol=1e-6)


def test_task_features_flatten_a_tasks_numbers_in_key_order():
    mdp = {"transitions": [[[0.25, 0.75]]], "reward_means": [[1.5]]}
    np.testing.assert_array_equal(task_features([mdp]), [[1.5, 0.25, 0.75]])  # sorted keys
    with pytest.raises(TypeError, match="not made of numbers"):
        task_features([{"goal": "north"}])
    with pytest.raises(ValueError, match="different widths"):
        task_features([{"means": [0.1]}, {"means": [0.1, 0.2]}])


def test_trial_sampler_backends_agree_and_the_wrong_call_is_named():
    """local, processes and ray (a local cluster, started and stopped) give the same trials."""
    policy = RecurrentPolicy(4, 3, True, 16, generator=torch.Generator().manual_seed(0))
    from metarl.tasks import family_of

    tasks = family_of("metarl/TabularMDP-v0", MDP).sample_tasks(6, np.random.default_rng(1))
    results = []
    for backend in ("local", "processes", "ray"):
        with Sampler(
            "metarl/TabularMDP-v0", MDP, policy.spec(), 4, backend=backend, num_workers=2, worker="trials"
        ) as s:
            results.append(s.sample_trials(tasks, policy.state_dict(), 3, np.random.SeedSequence(7)))
            with pytest.raises(RuntimeError, match="sample_trials"):
                s.sample(tasks, {}, 1, np.random.SeedSequence(0))
    assert results[0].rewards.shape == (6, 3, 4)
    for other in results[1:]:
        for name in ("observations", "actions", "rewards", "mask"):
            torch.testing.assert_close(getattr(results[0], name), getattr(other, name))


RL2_BANDIT = [
    "env_id=metarl/Bandit-v0",
    "env_kwargs={num_arms: 2, num_pulls: 10}",
    "agent=rl2_ppo",
    "horizon=10",
    "episodes_per_trial=1",
    "meta_batch_size=256",
    "rnn_hidden_size=32",
    "outer_lr=0.01",
    "ppo_epochs=4",
    "ppo_minibatches=4",
    "gae_lambda=0.3",
    "sampler_backend=local",
    "checkpoint_every=2",
]


def _better_arm_share(agent, family, seed: int) -> float:
    """Share of pulls 6-10 that go to the better arm, on 500 fresh bandits."""
    tasks = family.sample_tasks(500, np.random.default_rng(seed))
    episodes = agent.sampler.sample_trials(tasks, agent.policy.state_dict(), 1, np.random.SeedSequence(seed))
    better = np.array([np.argmax(task["means"]) for task in tasks])
    arms = episodes.actions[:, 0, 5:, 0].numpy()
    return float((arms == better[:, None]).mean())


def _csv_rows(path):
    with open(path, newline="") as handle:
        return [
            {k: v for k, v in row.items() if not k.startswith(("time/", "charts/env_steps_per_s"))}
            for row in csv.DictReader(handle)
        ]


@pytest.mark.parametrize("agent_name", ["rl2_ppo", "rl2_trpo"])
def test_short_rl2_run_on_a_two_armed_bandit_learns_to_prefer_the_better_arm(tmp_path, agent_name):
    extra = ["max_kl=0.02", "meta_iterations=10"] if agent_name == "rl2_trpo" else ["meta_iterations=15"]
    shared = [item for item in RL2_BANDIT if agent_name == "rl2_ppo" or not item.startswith("ppo_epochs=")]
    config = load_config(None, shared + [f"agent={agent_name}", *extra])
    untrained, family, sampler = build(config)
    with sampler:
        before = _better_arm_share(untrained, family, seed=11)
    run = train(config, tmp_path / "run", progress=False)
    trained, _, sampler = build(config)
    trained.load_state_dict(load_checkpoint(run)["agent"])
    with sampler:
        after = _better_arm_share(trained, family, seed=11)
    assert abs(before - 0.5) < 0.05 and after > 0.7, (before, after)


def test_rl2_resume_equals_uninterrupted(tmp_path):
    config = load_config(None, RL2_BANDIT + ["meta_iterations=4", "rnn_hidden_size=8", "meta_batch_size=32"])
    full = train(config, tmp_path / "full", progress=False)
    part = train(
        load_config(None, RL2_BANDIT + ["meta_iterations=2", "rnn_hidden_size=8", "meta_batch_size=32"]),
        tmp_path / "part",
        progress=False,
    )
    state = load_checkpoint(part)
    assert set(state["agent"]) == {"policy", "optimizer"}
    state["config"]["meta_iterations"] = 4
    train(config_from_dict(state["config"]), part, resume_state=state, progress=False)
    final, resumed = load_checkpoint(full), load_checkpoint(part)
    for key, value in final["agent"]["policy"].items():
        assert torch.equal(value, resumed["agent"]["policy"][key]), key
    assert _csv_rows(full / "progress.csv") == _csv_rows(part / "progress.csv")


def test_init_from_starts_a_new_run_from_a_trained_policy_with_a_fresh_optimizer(tmp_path):
    small = RL2_BANDIT + ["rnn_hidden_size=8", "meta_batch_size=32"]
    trained = train(load_config(None, small + ["meta_iterations=2"]), tmp_path / "trained", progress=False)
    # an Adam step of 1e-9 leaves the weights where they started: the trained ones
    fine_tune = load_config(None, small + ["meta_iterations=1", f"init_from={trained}", "outer_lr=1e-9"])
    tuned = train(fine_tune, tmp_path / "tuned", progress=False)
    fresh = train(
        load_config(None, small + ["meta_iterations=1", "outer_lr=1e-9"]), tmp_path / "fresh", progress=False
    )
    source, state, fresh_state = (load_checkpoint(run) for run in (trained, tuned, fresh))
    # a run directory is recorded as the checkpoint file it gave
    assert state["iteration"] == 1
    assert state["config"]["init_from"] == str(trained / "checkpoints" / "iteration_000002.pt")
    differs_from_fresh = False
    for key, value in source["agent"]["policy"].items():
        torch.testing.assert_close(state["agent"]["policy"][key], value, rtol=0, atol=1e-6)
        differs_from_fresh |= not torch.allclose(fresh_state["agent"]["policy"][key], value, atol=1e-3)
    assert differs_from_fresh
    steps = {int(s["step"]) for s in state["agent"]["optimizer"]["state"].values()}
    assert steps == {4 * 4}  # one iteration's ppo_epochs x ppo_minibatches: Adam started anew

    misfit = load_config(None, small + ["meta_iterations=1", "rnn_hidden_size=16", f"init_from={trained}"])
    with pytest.raises(CheckpointError, match="does not fit this config's policy"):
        train(misfit, tmp_path / "misfit", progress=False)
    assert not (tmp_path / "misfit").exists()


@pytest.mark.parametrize(
    "preset, baselines",
    [
        ("rl2_trpo_bandit_k5_n10", {"random", "greedy", "epsilon-greedy", "UCB1", "Thompson", "Gittins"}),
        (
            "rl2_ppo_tabular_mdp_n10",
            {"random", "state-blind greedy", "PSRL", "greedy", "optimal (knows the MDP)"},
        ),
    ],
)
def test_evaluate_reports_the_episode_curve_and_the_baselines_on_the_same_tasks(
    tmp_path, capsys, monkeypatch, preset, baselines
):
    import json

    from metarl import evaluation
    from metarl.cli import evaluate

    overrides = ["meta_iterations=1", "meta_batch_size=4", "rnn_hidden_size=8", "sampler_backend=local"]
    run = train(load_config(preset, overrides), tmp_path / "run", progress=False)
    drawn = {}
    plot_curve = evaluation.plot_curve

    def record(summary, path, title, references, step_label):
        drawn.update(references)
        plot_curve(summary, path, title, references, step_label)

    monkeypatch.setattr(evaluation, "plot_curve", record)
    assert evaluate.main([str(run), "--tasks", "30"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((run / "evaluation.json").read_text())
    k = load_config(preset).episodes_per_trial
    assert [row["step"] for row in summary["steps"]] == list(range(1, k + 1))
    assert "episode in trial" in printed and all(name in printed for name in baselines)
    assert set(summary["baselines"]) == baselines
    totals = np.sum([row["task_returns"] for row in summary["steps"]], axis=0)
    assert summary["trial_total"]["mean"] == pytest.approx(totals.mean())
    first = np.array(summary["steps"][0]["task_returns"])
    assert summary["steps"][0]["change_from_first"] is None
    for row in summary["steps"][1:]:  # each episode's paired change from the trial's first
        change = np.array(row["task_returns"]) - first
        assert row["change_from_first"]["mean"] == pytest.approx(change.mean())
        assert row["change_from_first"]["stderr"] == pytest.approx(change.std(ddof=1) / np.sqrt(len(change)))
        assert f"{change.mean():+.2f} ± {row['change_from_first']['stderr']:.2f}" in printed
    for name, baseline in summary["baselines"].items():  # paired: the difference of the means,
        paired = baseline["agent_minus_this"]  # with a standard error of its own
        assert paired["mean"] == pytest.approx(totals.mean() - baseline["mean"]), name
        assert f"{paired['mean']:+.2f} ± {paired['stderr']:.2f}" in printed
    if "bandit" in preset:  # also scored by the chosen arms' means: the same expectation
        scored = summary["expected_trial_total"]
        assert "Scored by the chosen arms' means" in printed
        assert abs(scored["mean"] - summary["trial_total"]["mean"]) < 4 * summary["trial_total"]["stderr"]
        for name, baseline in summary["baselines"].items():
            paired = baseline["agent_minus_this_expected"]
            assert paired["mean"] == pytest.approx(scored["mean"] - baseline["expected"]["mean"]), name
    if "mdp" in preset:
        # the episode curve is drawn next to PSRL's and greedy's on the same tasks
        assert drawn == {
            f"{name} (same tasks)": summary["baselines"][name]["episode_means"] for name in ("PSRL", "greedy")
        }
        # the optimum is exact and no policy beats it on average by much
        optimum = summary["baselines"]["optimal (knows the MDP)"]
        assert len(optimum["episode_means"]) == k and optimum["mean"] > summary["baselines"]["random"]["mean"]
    else:  # no paper curve or Bayesian baseline to draw for a bandit
        assert drawn == {}
    for name in ("adaptation_curve.png", "training_curve.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_episode_the_env_ends_before_the_horizon_ends_the_trials_episode_there():
    """A bandit of 5 pulls sampled with horizon 10: each episode is 5 valid pulls (the env's
    own end), the next episode starts after them; nothing of the env's autoreset leaks in."""
    spec = {"obs_dim": 1, "act_dim": 2, "discrete": True, "hidden_size": 4}
    worker = TrialWorker("metarl/Bandit-v0", {"num_arms": 2, "num_pulls": 5}, spec, horizon=10)
    params = {k: v.numpy() for k, v in RecurrentPolicy(**spec).state_dict().items()}
    request = TrialRequest(
        [{"means": [1.0, 1.0]}] * 3, params, episodes_per_trial=2, slot_seeds=np.ones((3, 2), np.uint32)
    )
    out = worker.rollout(request)
    np.testing.assert_array_equal(out["mask"].sum(-1), np.full((3, 2), 5))
    np.testing.assert_array_equal(
        out["rewards"][:, :, :5], np.ones((3, 2, 5))
    )  # every pull of a sure arm pays
    assert not out["terminated"].any()  # truncated by the env, not terminated


def test_training_plot_of_one_episode_trials_draws_one_line(tmp_path, monkeypatch):
    """A bandit trial is one episode: its first and last episode are the same numbers, so the
    training plot draws one line, labelled as the trial's return; two-episode trials get two."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metarl import evaluation

    progress = tmp_path / "progress.csv"
    progress.write_text(
        "meta/return_pre_adapt,meta/return_post_adapt,charts/env_steps\n5.0,5.0,100\n6.0,6.0,200\n"
    )
    drawn = {}

    def capture(draw, path, title, xlabel, ylabel):
        figure, axes = plt.subplots()
        draw(axes)
        drawn[path.name] = [line.get_label() for line in axes.get_lines()]
        plt.close(figure)

    monkeypatch.setattr(evaluation, "_save_plot", capture)
    evaluation.plot_training(progress, tmp_path / "one.png", "t", "return of a trial", None)
    evaluation.plot_training(progress, tmp_path / "two.png", "t", "episode 1", "episode 2")
    assert drawn == {"one.png": ["return of a trial"], "two.png": ["episode 1", "episode 2"]}


def test_bandit_trials_are_scored_by_the_pulled_arms_means_over_valid_pulls():
    """classical.expected_trial_totals: a trial of 2 episodes of 3 pulls, the second cut after
    one pull, sums the means of exactly the arms pulled."""
    from metarl.agents.classical import expected_trial_totals

    arms = torch.tensor([[[2, 0, 1], [1, 1, 1]], [[0, 0, 0], [2, 2, 2]]], dtype=torch.float32)[..., None]
    mask = torch.tensor([[[1, 1, 1], [1, 0, 0]], [[1, 1, 1], [1, 1, 1]]], dtype=torch.float32)
    tasks = [{"means": [0.1, 0.5, 0.9]}, {"means": [0.3, 0.2, 0.7]}]
    episodes = Episodes(
        observations=torch.zeros(2, 2, 3, 1),
        actions=arms,
        rewards=torch.zeros(2, 2, 3),
        mask=mask,
        terminated=torch.zeros(2, 2, dtype=torch.bool),
        tasks=tasks,
    )
    np.testing.assert_allclose(expected_trial_totals(episodes), [0.9 + 0.1 + 0.5 + 0.5, 3 * 0.3 + 3 * 0.7])
