"""`--out DIR`: write a replay's result as an adapter that `plastic chat --adapter DIR` loads.

The adapter is written into a temporary sibling directory and renamed into place only
when complete, so an interrupted replay (Ctrl-C) leaves no half-written output; an
existing non-empty DIR is refused (nothing is overwritten). Reward-source states start
fresh (a trace records rewards, not the reward sources' running statistics).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from plastic.errors import TraceError

if TYPE_CHECKING:
    from plastic.plasticity.model import PlasticModel
    from plastic.plasticity.synapses import PlasticSynapses


def check_out_dir(out: Path) -> None:
    """Refuse an output path that exists and is not an empty directory (before any work)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TraceError(f"{out} already exists and is not empty; choose another --out")


def load_into(model: PlasticModel, synapses: Mapping[str, PlasticSynapses]) -> None:
    """Copy replayed weights and rule states into `model`'s adapters (keys "adapter/site")."""
    for key, syn in synapses.items():
        adapter, site = key.split("/", 1)
        target = model.adapters[adapter].layers[site].synapses
        if getattr(target, "tables", None) is not None:  # a context memory: its whole state
            target.load(None, syn.state_arrays())
            continue
        if target.rule.name != syn.rule.name:
            raise TraceError(f"internal: {key} replayed with {syn.rule.name}, model has another")
        target.load(syn.weights.copy(), syn.state_arrays())


def save_atomically(model: PlasticModel, out: Path) -> list[Path]:
    """`model.save` into a temporary sibling, then rename it to `out` (never overwrites)."""
    from plastic.plasticity.adapter_io import save_atomically as save

    check_out_dir(out)
    return save(model, out, overwrite=out.is_dir())  # only an empty directory (checked)
