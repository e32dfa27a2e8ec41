"""Task families, registered as gymnasium ids ``metarl/<Name>-v0`` on import."""

from gymnasium.envs.registration import register, registry


def _register(env_id: str, **kwargs) -> None:
    if env_id not in registry:
        register(id=env_id, **kwargs)


_register(
    "metarl/Navigation2D-v0",
    entry_point="metarl.envs.navigation:Navigation2DEnv",
    vector_entry_point="metarl.envs.navigation:Navigation2DVectorEnv",
    max_episode_steps=100,
)

for _name in ("HalfCheetahVel", "HalfCheetahDir", "AntVel", "AntDir", "AntGoal"):
    _register(
        f"metarl/{_name}-v0",
        entry_point=f"metarl.envs.locomotion:{_name}Env",
        vector_entry_point=f"metarl.envs.locomotion:{_name}VectorEnv",
        max_episode_steps=200,
    )

_register(
    "metarl/Bandit-v0",
    entry_point="metarl.envs.bandit:BanditEnv",
    vector_entry_point="metarl.envs.bandit:BanditVectorEnv",
)
_register(
    "metarl/GaussianBandit-v0",
    entry_point="metarl.envs.bandit:BanditEnv",
    vector_entry_point="metarl.envs.bandit:BanditVectorEnv",
    kwargs={"arms": "gaussian"},
)
_register(
    "metarl/TabularMDP-v0",
    entry_point="metarl.envs.tabular_mdp:TabularMDPEnv",
    vector_entry_point="metarl.envs.tabular_mdp:TabularMDPVectorEnv",
)

# Meta-World (pip install 'metarl[metaworld]'); the module imports metaworld only when a
# family is made.
for _name in ("ML1", "ML10", "ML45"):
    _register(
        f"metarl/MetaWorld-{_name}-v3",
        entry_point=f"metarl.envs.metaworld:MetaWorld{_name}Env",
        vector_entry_point=f"metarl.envs.metaworld:MetaWorld{_name}VectorEnv",
        max_episode_steps=500,
    )
