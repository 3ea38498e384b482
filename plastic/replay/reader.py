"""Reading a trace store: checks, clipping to the last commit, typed access.

`TraceReader(path)` raises a one-line TraceError for anything that is not a readable
trace store of a known schema version: a missing path, not Zarr, another schema
version, missing or truncated arrays (shorter than the commit marker says), a missing
site. Every array is read clipped to the committed length, so a store whose writer was
killed mid-turn reads as it was at its last finished turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plastic.errors import TraceError
from plastic.replay.schema import GROUPS, NETWORK_UNKNOWN, SCHEMA_NAME, SCHEMA_VERSION, SiteSpec
from plastic.replay.schema import NETWORK as S_NETWORK


def check_root(root: Any, path: Path | str) -> None:
    """Raise TraceError unless `root` is a trace store of a schema version we read."""
    attrs = dict(root.attrs)
    info = attrs.get("plastic_trace")
    if not isinstance(info, dict) or info.get("schema") != SCHEMA_NAME:
        raise TraceError(f"{path} is a Zarr store but not a plastic trace store")
    version = info.get("version")
    if version != SCHEMA_VERSION:
        raise TraceError(
            f"{path} has trace schema version {version!r}; this plastic reads version "
            f"{SCHEMA_VERSION} (upgrade plastic to read it)"
        )
    for key in ("committed", "sites", "sessions", "backbone", "adapters"):
        if key not in attrs:
            raise TraceError(f"{path}: the store's attributes lack {key!r} (corrupt store)")


@dataclass(frozen=True)
class Checkpoint:
    index: int
    event: int  # events applied before it was taken
    turn: int


class TraceReader:
    """A trace store opened read-only and clipped to its last commit."""

    def __init__(self, path: str | Path) -> None:
        import zarr

        self.path = Path(path)
        if not self.path.exists():
            raise TraceError(f"{self.path}: no such trace store")
        if not (self.path / "zarr.json").is_file():
            raise TraceError(f"{self.path} is not a Zarr v3 store (no zarr.json)")
        try:
            self.root = zarr.open_group(str(self.path), mode="r", use_consolidated=False)
        except Exception as exc:
            raise TraceError(f"{self.path} is not a readable Zarr store ({exc})") from None
        check_root(self.root, self.path)
        self.attrs: dict[str, Any] = dict(self.root.attrs)
        self.committed: dict[str, Any] = self.attrs["committed"]
        try:
            self.sites = [SiteSpec.from_dict(s) for s in self.attrs["sites"]]
        except (KeyError, TypeError, ValueError):
            raise TraceError(f"{self.path}: bad site list in the store's attributes") from None
        self._check_arrays()

    # -- checks ---------------------------------------------------------------------
    def _array(self, path: str) -> Any:
        try:
            return self.root[path]
        except KeyError:
            raise TraceError(f"{self.path}: array {path!r} is missing (truncated store)") from None

    def _need(self, path: str, n: int) -> None:
        array = self._array(path)
        if array.shape[0] < n:
            raise TraceError(
                f"{self.path}: array {path!r} holds {array.shape[0]} rows but {n} were "
                "committed (truncated store)"
            )

    def _check_arrays(self) -> None:
        c = self.committed
        try:
            for group, specs in GROUPS.items():
                for name in specs:
                    self._need(f"{group}/{name}", int(c[group]))
            for site in self.sites:
                counts = c["sites"][f"site{site.index}"]
                for name in ("pre", "post", "token"):
                    self._need(f"{site.group}/{name}", int(counts["steps"]))
                self._need(f"{site.group}/flush_rows", int(counts["rows"]))
                self._need(f"{site.group}/checkpoint_weights", int(c["checkpoints"]))
                self._need(f"{site.group}/state_weights", int(c["states"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise TraceError(f"{self.path}: bad commit marker ({exc})") from None

    # -- access ---------------------------------------------------------------------
    def read(self, path: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of array `path`, clipped to its committed length."""
        n = self.length(path)
        stop = n if stop is None else min(stop, n)
        if start >= stop:
            array = self._array(path)
            return np.zeros((0, *array.shape[1:]), dtype=array.dtype)
        return np.asarray(self._array(path)[start:stop])

    def length(self, path: str) -> int:
        """Committed rows of array `path`."""
        c = self.committed
        parts = path.split("/")
        if parts[0] in GROUPS:
            return int(c[parts[0]])
        if parts[0] == S_NETWORK:
            return int(c["tokens"])
        if parts[0] == "sites":
            counts = c["sites"][parts[1]]
            name = parts[2]
            if name in ("pre", "post", "token"):
                return int(counts["steps"])
            if name == "flush_rows":
                return int(counts["rows"])
            if name == "checkpoint_weights":
                return int(c["checkpoints"])
            return int(c["states"])  # state_weights, rule_state/...
        raise TraceError(f"{self.path}: unknown array {path!r}")

    def site(self, name: str) -> SiteSpec:
        """A site by "adapter/site", by site name, or by "site<i>" (TraceError if absent)."""
        for spec in self.sites:
            if name in (spec.key, spec.site, f"site{spec.index}"):
                return spec
        known = ", ".join(s.key for s in self.sites) or "none"
        raise TraceError(f"{self.path}: no site {name!r} in this trace (sites: {known})")

    # -- the whole network (network/<site>: per-token spike counts) --------------------
    def network_sites(self) -> list[dict[str, Any]]:
        """The backbone sites recorded per token: [{"site", "neurons", "timesteps"}]
        (empty for a trace recorded before the network was)."""
        layout = self.attrs.get(S_NETWORK) or []
        return [entry for entry in layout if f"{S_NETWORK}/{entry['site']}" in self.root]

    def network_counts(self, site: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Spike counts [tokens, neurons] (uint8) of backbone site `site` for tokens
        [start, stop); NETWORK_UNKNOWN (255) where they were not recorded."""
        names = [entry["site"] for entry in self.network_sites()]
        if site not in names:
            known = ", ".join(names) or "none (recorded before traces kept the network)"
            raise TraceError(f"{self.path}: no backbone site {site!r} recorded (sites: {known})")
        path = f"{S_NETWORK}/{site}"
        stop = self.n_tokens if stop is None else min(stop, self.n_tokens)
        array = self._array(path)
        have = min(array.shape[0], stop)
        out = np.full((max(stop - start, 0), array.shape[1]), NETWORK_UNKNOWN, np.uint8)
        if have > start:
            out[: have - start] = np.asarray(array[start:have])
        return out

    @property
    def n_tokens(self) -> int:
        return int(self.committed["tokens"])

    @property
    def n_events(self) -> int:
        return int(self.committed["events"])

    @property
    def n_turns(self) -> int:
        return int(self.committed["turns"])

    @property
    def sessions(self) -> list[dict[str, Any]]:
        """Sessions whose first commit is in the committed range."""
        return [
            s for s in self.attrs["sessions"] if int(s["state"]) < int(self.committed["states"])
        ]

    def checkpoints(self) -> list[Checkpoint]:
        events = self.read("checkpoints/event")
        turns = self.read("checkpoints/turn")
        pairs = zip(events, turns, strict=True)
        return [Checkpoint(k, int(e), int(t)) for k, (e, t) in enumerate(pairs)]

    def checkpoint_weights(self, site: SiteSpec, index: int) -> np.ndarray:
        return np.asarray(self._array(f"{site.group}/checkpoint_weights")[index])

    def state(self, site: SiteSpec, index: int, rule: str) -> tuple[np.ndarray, dict[str, Any]]:
        """Weights and the rule's state arrays of saved state `index` (under `rule`)."""
        if index >= int(self.committed["states"]):
            raise TraceError(f"{self.path}: saved state {index} is past the last commit")
        weights = np.asarray(self._array(f"{site.group}/state_weights")[index])
        group = f"{site.group}/rule_state/{rule}"
        if group not in self.root:
            raise TraceError(f"{self.path}: no saved {rule} state for site {site.key}")
        state = {name: np.asarray(array[index]) for name, array in self.root[group].arrays()}
        return weights, state

    def context_state(self, site: SiteSpec, index: int) -> dict[str, np.ndarray] | None:
        """The readout's context signature saved with state `index`, or None if the trace
        holds none for it (no context gate, or saved before traces kept it)."""
        return self._state_group(site, "context", index)

    def reward_state(self, site: SiteSpec, index: int) -> dict[str, np.ndarray] | None:
        """The site's adapter's reward-source states saved with state `index` (as
        `RewardSet.state_arrays`), or None if the trace holds none for it."""
        return self._state_group(site, "reward_state", index)

    def _state_group(self, site: SiteSpec, sub: str, index: int) -> dict[str, np.ndarray] | None:
        group = f"{site.group}/{sub}"
        if index >= int(self.committed["states"]) or group not in self.root:
            return None
        state = {name: np.asarray(array[index]) for name, array in self.root[group].arrays()}
        floats = [v for v in state.values() if np.issubdtype(v.dtype, np.floating)]
        if any(np.isnan(value).any() for value in floats):  # saved before the arrays existed
            return None
        return state

    def nbytes_stored(self, prefix: str = "") -> int:
        """Bytes on disk under `prefix` (a sub-path of the store)."""
        base = self.path / prefix if prefix else self.path
        return sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
