"""Sites: named places where an adapter reads a population's spikes and writes back.

A hook registered on a site is called during every forward pass as
``hook(site, spikes) -> delta | None`` with ``spikes`` of shape [T, B, S, site.size]
(T timesteps per token). A returned ``delta`` of shape [B, S, site.write_dim] is
added at the site's write point: the residual stream right after the site's path
(``writes == "residual"``) or the logits (``writes == "logits"``). Hooks run in
registration order; each returns a handle whose ``remove()`` detaches it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch.utils.hooks import RemovableHandle

from plastic.errors import ConfigError


@dataclass(frozen=True)
class SiteInfo:
    """Where a site is and what it exposes."""

    name: str
    size: int  # neurons in the population whose spikes the site exposes
    write_dim: int  # width of the vector a hook may add at the write point
    writes: Literal["residual", "logits"]
    timesteps: int  # spikes per token per neuron (T)


SiteHook = Callable[[SiteInfo, torch.Tensor], "torch.Tensor | None"]


class SiteRegistry:
    """The sites of one model and the hooks attached to them."""

    def __init__(self, sites: list[SiteInfo]) -> None:
        self.info: dict[str, SiteInfo] = {s.name: s for s in sites}
        self._hooks: dict[str, OrderedDict[int, SiteHook]] = {s.name: OrderedDict() for s in sites}

    def add_hook(self, name: str, hook: SiteHook) -> RemovableHandle:
        """Attach `hook` to the site `name`; unknown names are a ConfigError listing the sites."""
        if name not in self.info:
            raise ConfigError(f"no site named {name!r}; sites are: {', '.join(self.info)}")
        handle = RemovableHandle(self._hooks[name])
        self._hooks[name][handle.id] = hook
        return handle

    def has_hooks(self, name: str) -> bool:
        return bool(self._hooks[name])

    def run(self, name: str, spikes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Call the hooks of site `name` on `spikes` and add their outputs to `target`."""
        hooks = self._hooks[name]
        if not hooks:
            return target
        site = self.info[name]
        for hook in list(hooks.values()):
            delta = hook(site, spikes)
            if delta is not None:
                target = target + delta.to(target.dtype)
        return target
