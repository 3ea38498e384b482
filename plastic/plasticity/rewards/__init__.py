"""Reward sources: the third factor of the adapters' learning rules.

- `protocol`: the contract a reward source fulfils and the events it sees;
- `registry`: built-ins, `register_reward` and the `plastic.rewards` entry-point group;
- `surprise`, `feedback`: the built-in sources; `callback`: a source from a Python function;
- `reward_set`: `RewardSet`, one adapter's sources bound to their parameters and states.
"""

from plastic.plasticity.rewards.reward_set import RewardSet

__all__ = ["RewardSet"]
