"""Learning-rule plugins: parameters, explicit state, and pure step functions.

    from plastic.rules import get_rule
    rule = get_rule("rstdp")                      # built-in or entry-point plugin
    params = rule.Params(learning_rate=1e-3)      # or rule.params_from_dict(config)
    state = rule.init_state(n_pre, n_post, params, backend="numba", mask=None)
    w, state = rule.step(pre_spikes, post_spikes, w, state, params)   # [n] or [T, n]
    w, state = rule.apply_reward(reward, w, state, params)
    w, state = rule.flush(w, state, params)       # exact weights/state before reading/saving
    arrays = rule.state_to_dict(state)            # numpy arrays, e.g. for safetensors

`Learner` wraps the same calls in a stateful object. Importing this package is cheap: no
torch or numba until a backend runs.
"""

from plastic.rules.backends import BACKENDS, DEFAULT_BACKEND
from plastic.rules.learner import Learner
from plastic.rules.protocol import RULE_API_VERSION, LearningRule
from plastic.rules.registry import (
    ENTRY_POINT_GROUP,
    PluginWarning,
    get_rule,
    register_rule,
    rule_names,
    rule_sources,
    unregister_rule,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "ENTRY_POINT_GROUP",
    "RULE_API_VERSION",
    "Learner",
    "LearningRule",
    "PluginWarning",
    "get_rule",
    "register_rule",
    "rule_names",
    "rule_sources",
    "unregister_rule",
]
