"""Plastic adapters on the frozen backbone, their rewards and the online-learning engine.

    from plastic.plasticity import AdapterConfig, attach
    plastic = attach(backbone, AdapterConfig(kind="readout", rule="rstdp"))
    conv = Conversation(plastic)                  # runs like the backbone, learning per token
    engine = plastic.engine
    engine.begin_turn()
    engine.observe(conv, "The zorblat of Quimby is teal.\\n\\n")   # learn (surprise reward)
    with engine.generating():
        reply = [t for t in conv.generate(100)]  # eligibility from the model's own tokens
    report = engine.end_turn()                   # update cap + drift guard; report.events
    engine.feedback(+1)                          # /good
    engine.undo()                                # bit-identical weights of the turn before
    engine.score("The zorblat of Quimby is teal.")   # bits/byte, learns nothing
    plastic.save("adapters/quimby")              # adapter_config.json + adapter_model.safetensors
    again = PlasticModel.from_pretrained(backbone, "adapters/quimby")

Modules (one job each): `config` (AdapterConfig, GuardConfig), `config_v1` (the previous
format), `kinds` (the adapter-kind protocol and registry), `readout` / `residual` / `memory`
(the built-in kinds), `targeting` (which sites), `synapses` (weights + rule + snapshots),
`adapter` (a named adapter), `model` (PlasticModel: the wrapper and the per-token learning
order), `engine` (turns, guards, undo, feedback, stats), `adapter_io` (save/load),
`rewards/` (reward sources, their registry and `RewardSet`), `probe` (the drift guard's
text), `chat_learning` (the chat's flags and commands), `prequential` (a stream read once by
the backbone, replayed exactly under readout adapters: what `plastic bench adapt` runs on).
The per-token Numba kernels are in `plastic.kernels_numba.adapter_kernels`.

When learning happens and from what signal is documented in `plastic.plasticity.engine`;
the exact per-token order in `plastic.plasticity.model`.
"""

from plastic.kernels_numba.threads import set_kernel_threads
from plastic.plasticity.adapter import Adapter
from plastic.plasticity.chat_learning import ChatLearning, build_plastic_model
from plastic.plasticity.config import AdapterConfig, GuardConfig, default_rule_params
from plastic.plasticity.engine import GuardEvent, LearningEngine, TurnReport
from plastic.plasticity.kinds import (
    ADAPTER_API_VERSION,
    AdapterKind,
    AdapterLayer,
    KindSettings,
    KindSpec,
    get_kind,
    kind_names,
    register_kind,
    unregister_kind,
)
from plastic.plasticity.model import PlasticModel, attach
from plastic.plasticity.rewards.callback import callback_reward
from plastic.plasticity.rewards.protocol import REWARD_API_VERSION, RewardSource, TokenEvent
from plastic.plasticity.rewards.registry import (
    get_reward,
    register_reward,
    reward_names,
    unregister_reward,
)

__all__ = [
    "ADAPTER_API_VERSION",
    "REWARD_API_VERSION",
    "Adapter",
    "AdapterConfig",
    "AdapterKind",
    "AdapterLayer",
    "ChatLearning",
    "GuardConfig",
    "GuardEvent",
    "KindSettings",
    "KindSpec",
    "LearningEngine",
    "PlasticModel",
    "RewardSource",
    "TokenEvent",
    "TurnReport",
    "attach",
    "build_plastic_model",
    "callback_reward",
    "default_rule_params",
    "get_kind",
    "get_reward",
    "kind_names",
    "register_kind",
    "register_reward",
    "reward_names",
    "set_kernel_threads",
    "unregister_kind",
    "unregister_reward",
]
