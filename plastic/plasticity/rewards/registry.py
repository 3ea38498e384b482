"""Registry of reward sources: built-ins, `register_reward` and the `plastic.rewards` group.

    [project.entry-points."plastic.rewards"]
    myreward = "mypackage.myreward"       # a module (or "module:object") satisfying RewardSource

Same machinery and conventions as learning rules (`plastic.plugins.PluginRegistry`). Built-ins:
`surprise` and `feedback`; `callback` is whatever `register_reward(callback_reward(fn))`
registered in this process.
"""

from __future__ import annotations

from typing import Any

from plastic.errors import ConfigError
from plastic.plasticity.rewards.protocol import RewardSource, protocol_problems
from plastic.plugins import PluginRegistry

ENTRY_POINT_GROUP = "plastic.rewards"
BUILTIN_REWARDS = {
    "surprise": "plastic.plasticity.rewards.surprise",
    "feedback": "plastic.plasticity.rewards.feedback",
}

REWARDS: PluginRegistry[RewardSource] = PluginRegistry(
    "reward source", ENTRY_POINT_GROUP, BUILTIN_REWARDS, protocol_problems, ConfigError
)


def get_reward(name: str) -> RewardSource:
    """The reward source called `name` (ConfigError if unknown or invalid)."""
    return REWARDS.get(name)


def register_reward(source: Any = None, *, name: str | None = None, replace: bool = False) -> Any:
    """Register a reward source in this process (usable as a decorator)."""
    return REWARDS.register(source, name=name, replace=replace)


def unregister_reward(name: str) -> None:
    """Remove a reward source added with `register_reward`."""
    REWARDS.unregister(name)


def reward_names() -> list[str]:
    """Names of every known reward source, without importing them."""
    return REWARDS.names()
