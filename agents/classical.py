"""Classical baselines for the RL2 benchmarks, run on the same tasks as the agent.

Bandits (``{"means": [...]}``; Bernoulli unless noted): random, greedy, epsilon-greedy,
UCB1, Thompson sampling (Bernoulli and Gaussian), and the Gittins index policy (Bernoulli).
Beliefs start from Beta(1, 1) per Bernoulli arm (N(0, 1) per Gaussian arm).

Tabular MDPs (``{"transitions", "reward_means"}``): random, the value-iteration optimum
that knows the MDP (its exact expected return), PSRL (posterior sampling: each
episode, draw an MDP from the posterior, Dirichlet(1 + counts) transitions and a
N(1, 1)-prior Gaussian posterior per reward mean with unit noise, and follow its optimal
finite-horizon policy), and greedy (the same, but planning on the posterior mean MDP
instead of a draw).

Everything is vectorised over tasks with numpy. Hyperparameters (epsilon, the UCB
constant, the Gittins discount) are tuned on separate tuning tasks, never on the tasks
reported (see `tune`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from metarl import seeding
from metarl.episodes import Episodes
from metarl.evaluation import mean_and_stderr
from metarl.registry import FamilyBaselines, register_baselines
from metarl.tasks import Task

# ---- bandits -------------------------------------------------------------------------------

EPSILONS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3)
UCB_CONSTANTS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
GITTINS_DISCOUNTS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)

# A bandit policy: (successes [T, k], pulls [T, k], pull index t, rng) -> arms [T]
# (for Gaussian arms, "successes" holds the reward sums).
BanditPolicy = Callable[[np.ndarray, np.ndarray, int, np.random.Generator], np.ndarray]


def _argmax_random_ties(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise argmax of values [T, k], ties broken uniformly at random."""
    noise = rng.random(values.shape) * 1e-9
    best = values.max(axis=1, keepdims=True)
    return np.argmax(np.where(values >= best - 1e-12, 1.0 + noise, 0.0), axis=1)


def posterior_means(sums: np.ndarray, pulls: np.ndarray, gaussian: bool) -> np.ndarray:
    """Beta(1, 1) (Bernoulli) or N(0, 1) (Gaussian) posterior means of the arms [T, k]."""
    return sums / (pulls + 1.0) if gaussian else (sums + 1.0) / (pulls + 2.0)


def random_policy(gaussian: bool = False) -> BanditPolicy:
    return lambda sums, pulls, t, rng: rng.integers(0, sums.shape[1], size=sums.shape[0])


def greedy_policy(gaussian: bool = False) -> BanditPolicy:
    return lambda sums, pulls, t, rng: _argmax_random_ties(posterior_means(sums, pulls, gaussian), rng)


def epsilon_greedy_policy(epsilon: float, gaussian: bool = False) -> BanditPolicy:
    def act(sums: np.ndarray, pulls: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        greedy = _argmax_random_ties(posterior_means(sums, pulls, gaussian), rng)
        explore = rng.random(len(greedy)) < epsilon
        return np.where(explore, rng.integers(0, sums.shape[1], size=len(greedy)), greedy)

    return act


def ucb1_policy(constant: float, gaussian: bool = False) -> BanditPolicy:
    """Index = posterior mean + c sqrt(2 ln(t + 1) / n_i), counts from the prior's pseudo-pulls."""

    def act(sums: np.ndarray, pulls: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        prior_pulls = 1.0 if gaussian else 2.0
        bonus = constant * np.sqrt(2.0 * np.log(t + prior_pulls * sums.shape[1]) / (pulls + prior_pulls))
        return _argmax_random_ties(posterior_means(sums, pulls, gaussian) + bonus, rng)

    return act


def thompson_policy(gaussian: bool = False) -> BanditPolicy:
    def act(sums: np.ndarray, pulls: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        if gaussian:
            draws = rng.normal(sums / (pulls + 1.0), 1.0 / np.sqrt(pulls + 1.0))
        else:
            draws = rng.beta(sums + 1.0, pulls - sums + 1.0)
        return np.argmax(draws, axis=1)

    return act


@lru_cache(maxsize=32)
def gittins_table(discount: float, max_pulls: int, depth: int = 300, grid: int = 2001) -> np.ndarray:
    """Gittins indices of a Bernoulli arm with posterior Beta(a, b): table [a, b] for
    a, b >= 1, a + b <= max_pulls + 2 (index [a, b]; other entries NaN).

    Calibration: the index of a state is the retirement reward per step lambda at which
    continuing to pull and retiring are equally good. Backward induction over posterior
    states (a, b) with a + b <= max_pulls + 2 + depth, V(a, b) = max(lambda / (1 - discount),
    p + discount (p V(a + 1, b) + (1 - p) V(a, b + 1))), p = a / (a + b), with the posterior
    frozen beyond that depth, is run for a grid of lambdas at once (one pass serves every
    state); each state's index is then interpolated where continuing stops paying, to
    about 1e-5 with the default grid.
    """
    lambdas = np.linspace(0.0, 1.0, grid)[:, None]  # [G, 1]
    retire = lambdas / (1.0 - discount)
    top = max_pulls + 2 + depth
    size = max_pulls + 3
    table = np.full((size, size), np.nan)
    a = np.arange(1, top)  # on diagonal a + b = total: a in [1, total - 1]
    p = a / top
    value = np.maximum(retire, p / (1.0 - discount))  # frozen posterior at the frontier
    for total in range(top - 1, 1, -1):
        a = np.arange(1, total)
        p = a / total
        # value holds the diagonal total + 1, indexed by a - 1 for a in [1, total]
        cont = p + discount * (p * value[:, a] + (1 - p) * value[:, a - 1])  # [G, total - 1]
        value = np.maximum(retire, cont)
        if total <= max_pulls + 2:
            advantage = cont - retire  # decreasing in lambda; the index is its root
            for column, arm_a in enumerate(a):
                table[arm_a, total - arm_a] = _root(lambdas[:, 0], advantage[:, column])
    return table


def _root(x: np.ndarray, y: np.ndarray) -> float:
    """The first x where the decreasing y crosses 0 (linear interpolation)."""
    below = np.flatnonzero(y <= 0)
    if not len(below):
        return float(x[-1])
    i = below[0]
    if i == 0:
        return float(x[0])
    return float(x[i - 1] + (x[i] - x[i - 1]) * y[i - 1] / (y[i - 1] - y[i]))


def gittins_policy(discount: float, max_pulls: int) -> BanditPolicy:
    table = gittins_table(discount, max_pulls)

    def act(sums: np.ndarray, pulls: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        a = (sums + 1).astype(np.int64)
        b = (pulls - sums + 1).astype(np.int64)
        return _argmax_random_ties(table[a, b], rng)

    return act


def bandit_pulls(
    means: np.ndarray, num_pulls: int, policy: BanditPolicy, rng: np.random.Generator, gaussian: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """`policy` playing `num_pulls` pulls of each bandit with arm means [T, k]: (arms [T, n]
    int64, rewards [T, n] float64; 0/1 for Bernoulli arms, mean + N(0, 1) for Gaussian)."""
    sums, pulls = np.zeros_like(means, dtype=np.float64), np.zeros_like(means, dtype=np.float64)
    rows = np.arange(len(means))
    arms = np.zeros((len(means), num_pulls), dtype=np.int64)
    rewards = np.zeros((len(means), num_pulls))
    for t in range(num_pulls):
        arm = policy(sums, pulls, t, rng)
        if gaussian:
            reward = means[rows, arm] + rng.standard_normal(len(means))
        else:
            reward = (rng.random(len(means)) < means[rows, arm]).astype(np.float64)
        sums[rows, arm] += reward
        pulls[rows, arm] += 1
        arms[:, t], rewards[:, t] = arm, reward
    return arms, rewards


def play_bandits(
    tasks: list[Task], num_pulls: int, policy: BanditPolicy, rng: np.random.Generator, gaussian: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(total reward [tasks], expected total [tasks]) of `policy` over `num_pulls` pulls of
    each bandit. The expected total sums the chosen arms' means: the same expectation as the
    total reward, without the noise of the rewards themselves (`chosen_arm_means`)."""
    means = np.array([task["means"] for task in tasks], dtype=np.float64)  # [T, k]
    arms, rewards = bandit_pulls(means, num_pulls, policy, rng, gaussian)
    return rewards.sum(axis=1), np.take_along_axis(means, arms, axis=1).sum(axis=1)


def chosen_arm_means(tasks: list[Task], arms: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The sum of the chosen arms' means over the valid pulls of each bandit: [tasks].

    arms: [tasks, pulls] arm indices; mask: [tasks, pulls], 1 where a pull happened. Its
    expectation is the expected total reward; scoring an agent by it leaves out the
    Bernoulli (or Gaussian) noise of its rewards, so a small difference between two
    policies on the same bandits is measurable with fewer bandits.
    """
    means = np.array([task["means"] for task in tasks], dtype=np.float64)  # [T, k]
    chosen = np.take_along_axis(means, np.asarray(arms, dtype=np.int64), axis=1)
    return (chosen * np.asarray(mask, dtype=np.float64)).sum(axis=1)


def tune(
    make: Callable[[float], BanditPolicy],
    values: Sequence[float],
    tuning_tasks: list[Task],
    num_pulls: int,
    seed: int,
    gaussian: bool = False,
) -> float:
    """The value of `values` whose policy earns most on `tuning_tasks` (common random numbers)."""
    scores = [
        play_bandits(tuning_tasks, num_pulls, make(v), np.random.default_rng(seed), gaussian)[0].mean()
        for v in values
    ]
    return float(values[int(np.argmax(scores))])


def bandit_baselines(
    tasks: list[Task], tuning_tasks: list[Task], num_pulls: int, seed: int, gaussian: bool = False
) -> dict[str, dict]:
    """{name: {"totals": [tasks] total reward, "expected_totals": [tasks] the chosen arms'
    means summed, "parameter": tuned value or None}}."""
    policies: dict[str, tuple[BanditPolicy, float | None]] = {
        "random": (random_policy(gaussian), None),
        "greedy": (greedy_policy(gaussian), None),
    }
    epsilon = tune(
        lambda e: epsilon_greedy_policy(e, gaussian), EPSILONS, tuning_tasks, num_pulls, seed, gaussian
    )
    policies["epsilon-greedy"] = (epsilon_greedy_policy(epsilon, gaussian), epsilon)
    constant = tune(
        lambda c: ucb1_policy(c, gaussian), UCB_CONSTANTS, tuning_tasks, num_pulls, seed, gaussian
    )
    policies["UCB1"] = (ucb1_policy(constant, gaussian), constant)
    policies["Thompson"] = (thompson_policy(gaussian), None)
    if not gaussian:
        discount = tune(
            lambda g: gittins_policy(g, num_pulls), GITTINS_DISCOUNTS, tuning_tasks, num_pulls, seed
        )
        policies["Gittins"] = (gittins_policy(discount, num_pulls), discount)
    results = {}
    for name, (policy, value) in policies.items():
        totals, expected = play_bandits(tasks, num_pulls, policy, np.random.default_rng(seed + 1), gaussian)
        results[name] = {"totals": totals, "expected_totals": expected, "parameter": value}
    return results


# ---- tabular MDPs ----------------------------------------------------------------------------


def finite_horizon_values(transitions: np.ndarray, means: np.ndarray, horizon: int) -> np.ndarray:
    """Optimal Q-values by backward induction: Q [T, horizon, S, A] for MDPs with
    transitions [T, S, A, S] and reward means [T, S, A] (Q[:, h] has horizon - h steps to go)."""
    num_tasks, num_states, num_actions = means.shape
    q = np.zeros((num_tasks, horizon, num_states, num_actions))
    next_value = np.zeros((num_tasks, num_states))
    for h in range(horizon - 1, -1, -1):
        q[:, h] = means + np.einsum("tsan,tn->tsa", transitions, next_value)
        next_value = q[:, h].max(-1)
    return q


def _parse_mdps(tasks: list[Task]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([task["transitions"] for task in tasks], dtype=np.float64),
        np.array([task["reward_means"] for task in tasks], dtype=np.float64),
    )


def optimal_episode_return(tasks: list[Task], episode_length: int) -> np.ndarray:
    """Exact expected return of one episode from state 0 under the optimal policy: [tasks]."""
    transitions, means = _parse_mdps(tasks)
    return finite_horizon_values(transitions, means, episode_length)[:, 0, 0].max(-1)


@dataclass
class MDPTrials:
    """What a baseline did over trials of episodes on tabular MDPs, steps in time order:
    states, actions [tasks, episodes * episode_length] (int), rewards [tasks, episodes *
    episode_length], and episode_returns [episodes, tasks]."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episode_returns: np.ndarray


def play_mdps(
    tasks: list[Task],
    num_episodes: int,
    episode_length: int,
    rng: np.random.Generator,
    policy: str,
) -> np.ndarray:
    """Returns [episodes, tasks] of `policy` over a trial of episodes: "random", "psrl" (plan
    each episode on an MDP drawn from the posterior), "greedy" (plan on the posterior mean) or
    "state_blind" (ignore the state: each step plays the action of highest posterior mean
    reward pooled over all states, as if the MDP were a bandit over its actions)."""
    return mdp_trials(tasks, num_episodes, episode_length, rng, policy).episode_returns


MDP_POLICIES = ("random", "psrl", "greedy", "state_blind")


def mdp_trials(
    tasks: list[Task],
    num_episodes: int,
    episode_length: int,
    rng: np.random.Generator,
    policy: str,
) -> MDPTrials:
    """`play_mdps`, keeping every step's state, action and reward."""
    if policy not in MDP_POLICIES:
        raise ValueError(
            f"unknown MDP policy {policy!r}: expected one of {', '.join(map(repr, MDP_POLICIES))}"
        )
    transitions, means = _parse_mdps(tasks)
    num_tasks, num_states, num_actions = means.shape
    cumulative = np.cumsum(transitions, axis=-1)
    rows = np.arange(num_tasks)
    counts = np.zeros((num_tasks, num_states, num_actions, num_states))
    reward_sums = np.zeros((num_tasks, num_states, num_actions))
    visits = np.zeros((num_tasks, num_states, num_actions))
    steps = (num_tasks, num_episodes * episode_length)
    states, actions, rewards = np.zeros(steps, np.int64), np.zeros(steps, np.int64), np.zeros(steps)
    for episode in range(num_episodes):
        if policy == "psrl":
            sampled_p = _dirichlet_rows(1.0 + counts, rng)
            # N(1, 1) prior, unit noise: posterior N((1 + sum r) / (1 + n), 1 / (1 + n))
            sampled_mu = rng.normal((1.0 + reward_sums) / (1.0 + visits), 1.0 / np.sqrt(1.0 + visits))
            q = finite_horizon_values(sampled_p, sampled_mu, episode_length)
        elif policy == "greedy":
            mean_p = (1.0 + counts) / (1.0 + counts).sum(-1, keepdims=True)
            q = finite_horizon_values(mean_p, (1.0 + reward_sums) / (1.0 + visits), episode_length)
        state = np.zeros(num_tasks, np.int64)
        for h in range(episode_length):
            if policy == "random":
                action = rng.integers(0, num_actions, size=num_tasks)
            elif policy == "state_blind":
                pooled_means = (1.0 + reward_sums.sum(1)) / (1.0 + visits.sum(1))  # [tasks, actions]
                action = _argmax_random_ties(pooled_means, rng)
            else:
                action = _argmax_random_ties(q[rows, h, state], rng)
            reward = means[rows, state, action] + rng.standard_normal(num_tasks)
            step = episode * episode_length + h
            states[:, step], actions[:, step], rewards[:, step] = state, action, reward
            cdf = cumulative[rows, state, action]
            next_state = np.minimum((rng.random(num_tasks)[:, None] >= cdf).sum(1), num_states - 1)
            counts[rows, state, action, next_state] += 1
            reward_sums[rows, state, action] += reward
            visits[rows, state, action] += 1
            state = next_state
    returns = rewards.reshape(num_tasks, num_episodes, episode_length).sum(-1).T  # [episodes, tasks]
    return MDPTrials(states, actions, rewards, returns)


def _dirichlet_rows(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Independent Dirichlet draws along the last axis of alpha [..., n]."""
    gammas = rng.standard_gamma(alpha)
    return gammas / gammas.sum(-1, keepdims=True)


def mdp_baselines(tasks: list[Task], num_episodes: int, episode_length: int, seed: int) -> dict[str, dict]:
    """{name: {"episode_returns": [episodes, tasks]}} for random, PSRL, greedy, state-blind
    greedy and the optimum."""
    baselines = {  # each played from its own generator of `seed`
        name: {
            "episode_returns": play_mdps(
                tasks, num_episodes, episode_length, np.random.default_rng(seed), policy
            )
        }
        for name, policy in (
            ("random", "random"),
            ("PSRL", "psrl"),
            ("greedy", "greedy"),
            ("state-blind greedy", "state_blind"),
        )
    }
    optimum = optimal_episode_return(tasks, episode_length)
    baselines["optimal (knows the MDP)"] = {"episode_returns": np.tile(optimum, (num_episodes, 1))}
    return baselines


# ---- evaluation: the baselines of a family, registered for `metarl.evaluation` -------------


def _baselines_seed(task_seed: int) -> int:
    """The classical baselines' own seed for the tasks drawn with `task_seed`."""
    return int(seeding.seed_sequence(task_seed, seeding.BASELINES).generate_state(1)[0])


def _bandit_play(family, tasks: list[Task], horizon: int, episodes_per_trial: int, task_seed: int) -> dict:
    """The bandit baselines on `tasks`, tuned on the family's own tuning tasks."""
    seed = _baselines_seed(task_seed)
    tuning = family.sample_tasks(len(tasks), seeding.generator(task_seed, seeding.BASELINE_TUNING))
    pulls = min(family.num_pulls, horizon) * episodes_per_trial
    results = bandit_baselines(tasks, tuning, pulls, seed, family.arms == "gaussian")
    return {
        name: {
            **mean_and_stderr(r["totals"]),
            "parameter": r["parameter"],
            "task_totals": r["totals"],
            "task_expected_totals": r["expected_totals"],
        }
        for name, r in results.items()
    }


def _mdp_play(family, tasks: list[Task], horizon: int, episodes_per_trial: int, task_seed: int) -> dict:
    """The tabular-MDP baselines on `tasks`, with their return per episode of the trial."""
    seed = _baselines_seed(task_seed)
    length = min(family.episode_length, horizon)
    summaries = {}
    for name, r in mdp_baselines(tasks, episodes_per_trial, length, seed).items():
        totals = r["episode_returns"].sum(0)  # [tasks]
        summaries[name] = {
            **mean_and_stderr(totals),
            "parameter": None,
            "task_totals": totals,
            "episode_means": r["episode_returns"].mean(1).tolist(),
        }
    return summaries


def expected_trial_totals(episodes: Episodes) -> np.ndarray:
    """Each bandit trial's pulls scored by the chosen arms' means, summed: [tasks]."""
    num_tasks = len(episodes.tasks)
    arms = episodes.actions[..., 0].reshape(num_tasks, -1).numpy()
    mask = episodes.mask.reshape(num_tasks, -1).numpy()
    return chosen_arm_means(episodes.tasks, arms, mask)


def register() -> None:
    """Register the bandit and tabular-MDP baselines with `metarl.registry`."""
    from metarl.envs.bandit import BanditEnv
    from metarl.envs.tabular_mdp import TabularMDPEnv

    register_baselines(BanditEnv, FamilyBaselines(_bandit_play, expected_totals=expected_trial_totals))
    register_baselines(TabularMDPEnv, FamilyBaselines(_mdp_play, curves=("PSRL", "greedy")))
