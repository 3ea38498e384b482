"""Reading a trace store: checks, clipping to the last commit, typed access.

`TraceReader(path)` raises a one-line TraceError for anything that is not a readable
trace store of a known schema version: a missing path, not Zarr, another schema
version, missing or truncated arrays (shorter than the commit marker says), a missing
site. Every array is read clipped to the committed length, so a store whose writer was
killed mid-turn reads as it was at its last finished turn.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plastic.errors import TraceError
from plastic.replay.schema import GROUPS, NETWORK_UNKNOWN, SCHEMA_NAME, SCHEMA_VERSION, SiteSpec
from plastic.replay.schema import NETWORK as S_NETWORK

# Arrays whose codecs include this checksum were also written with every chunk, all-fill
# ones included (see store.create_array), so a missing chunk in their committed range is damage.
CHECKED_CODEC = "Crc32cCodec"


def check_root(root: Any, path: Path | str) -> None:
    """Raise TraceError unless `root` is a trace store of a schema version we read."""
    attrs = dict(root.attrs)
    info = attrs.get("plastic_trace")
    if attrs.get("plastic_trace_creating") and info is None:
        raise TraceError(f"{path}: its creation was interrupted; it holds no recorded data")
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
        self._checked_arrays: dict[str, bool] = {}
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
                for name, n in site.committed_lengths(counts, c).items():
                    self._need(f"{site.group}/{name}", n)
        except (KeyError, TypeError, ValueError) as exc:
            raise TraceError(f"{self.path}: bad commit marker ({exc})") from None

    # -- access ---------------------------------------------------------------------
    def read(self, path: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of array `path`, clipped to its committed length."""
        n = self.length(path)
        stop = n if stop is None else min(stop, n)
        array = self._array(path)
        if start >= stop:
            return np.zeros((0, *array.shape[1:]), dtype=array.dtype)
        return self._rows(path, array, start, stop)

    def _row(self, path: str, index: int) -> np.ndarray:
        """Row `index` of array `path` (a saved state or checkpoint), checked like `read`."""
        return self._rows(path, self._array(path), index, index + 1)[0]

    def _rows(self, path: str, array: Any, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop): a missing chunk or one that fails to decode (checksum,
        truncation) is a TraceError, never rows of fill values."""
        if self._checked(path, array):
            self._need_chunks(path, array, start, stop)
        try:
            return np.asarray(array[start:stop])
        except Exception as exc:
            raise self.damaged(path, start, stop, exc) from None

    def damaged(self, path: str, start: int, stop: int, exc: BaseException) -> TraceError:
        """The one-line error for array rows that cannot be read back as written."""
        first = str(exc).splitlines()[0] if str(exc) else ""
        return TraceError(
            f"{self.path}: trace damaged at {path} rows {start}..{stop - 1} "
            f"({type(exc).__name__}{': ' + first[:120] if first else ''})"
        )

    def _checked(self, path: str, array: Any) -> bool:
        """Whether the array was written with checksums and every chunk (stores made before
        plastic wrote them skipped all-fill chunks, so a missing chunk may be legitimate)."""
        known = self._checked_arrays.get(path)
        if known is None:
            codecs = getattr(array.metadata, "codecs", ())
            known = any(type(c).__name__ == CHECKED_CODEC for c in codecs)
            self._checked_arrays[path] = known
        return known

    def _need_chunks(self, path: str, array: Any, start: int, stop: int) -> None:
        import itertools

        rows = array.chunks[0]
        tails = [range(n) for n in array.cdata_shape[1:]]
        base = self.path / path
        for first in range(start // rows, (stop - 1) // rows + 1):
            for rest in itertools.product(*tails):
                key = array.metadata.encode_chunk_key((first, *rest))
                if not (base / key).is_file():
                    lo, hi = first * rows, min((first + 1) * rows, stop)
                    raise TraceError(
                        f"{self.path}: trace damaged at {path} rows {lo}..{hi - 1} "
                        f"(chunk {key} is missing)"
                    )

    def check(self) -> dict[str, int]:
        """Read every committed row of every array (TraceError at the first damage); what
        was verified: arrays, rows and bytes on disk."""
        arrays = rows = 0
        for path, array, n in self._committed_arrays():
            block = max(array.chunks[0], 1) * 16
            for start in range(0, n, block):
                self._rows(path, array, start, min(start + block, n))
            arrays += 1
            rows += n
        return {"arrays": arrays, "rows": rows, "bytes": self.nbytes_stored()}

    def check_chunks_present(self) -> None:
        """TraceError if a chunk of a committed range is missing (file checks only: cheap
        enough to run before a writer continues the store)."""
        for path, array, n in self._committed_arrays():
            if n and self._checked(path, array):
                self._need_chunks(path, array, 0, n)

    def _committed_arrays(self) -> Iterator[tuple[str, Any, int]]:
        """(path, array, committed rows) of every array in the store."""
        import zarr

        with warnings.catch_warnings():  # the writer's lock file is not a Zarr node
            warnings.simplefilter("ignore")
            members = list(self.root.members(max_depth=None))
        for path, array in sorted((p, a) for p, a in members if isinstance(a, zarr.Array)):
            yield path, array, min(self.length(path), array.shape[0])

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
            spec = next((s for s in self.sites if s.group == f"sites/{parts[1]}"), None)
            if spec is not None and len(parts) == 3:
                lengths = spec.committed_lengths(counts, c)
                if parts[2] in lengths:
                    return lengths[parts[2]]
            return int(c["states"])  # rule_state/..., reward_state/..., context/...
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
        """The weights at checkpoint `index` (a memory: its weight vector, see
        `memory_checkpoint` for its whole state)."""
        if site.records_reads:
            from plastic.replay.memory_state import weights_vector

            return weights_vector(self.memory_checkpoint(site, index))
        return self._row(f"{site.group}/checkpoint_weights", index)

    def memory_checkpoint(self, site: SiteSpec, index: int) -> dict[str, np.ndarray]:
        """A context memory's state arrays at checkpoint `index`."""
        from plastic.replay.memory_state import read_record, split_record

        return split_record(read_record(self, site, "checkpoint", index))[0]

    def state(self, site: SiteSpec, index: int, rule: str) -> tuple[np.ndarray, dict[str, Any]]:
        """Weights and the rule's state arrays of saved state `index` (under `rule`; a
        memory: its weight vector and its state arrays)."""
        if index >= int(self.committed["states"]):
            raise TraceError(f"{self.path}: saved state {index} is past the last commit")
        if site.records_reads:
            from plastic.replay.memory_state import read_record, split_record, weights_vector

            state = split_record(read_record(self, site, "state", index))[0]
            return weights_vector(state), state
        weights = self._row(f"{site.group}/state_weights", index)
        group = f"{site.group}/rule_state/{rule}"
        if group not in self.root:
            raise TraceError(f"{self.path}: no saved {rule} state for site {site.key}")
        return weights, self._group_row(group, index)

    def _group_row(self, group: str, index: int) -> dict[str, np.ndarray]:
        return {name: self._row(f"{group}/{name}", index) for name, _ in self.root[group].arrays()}

    def context_state(self, site: SiteSpec, index: int) -> dict[str, np.ndarray] | None:
        """The readout's context signature saved with state `index`, or None if the trace
        holds none for it (no context gate, or saved before traces kept it)."""
        return self._state_group(site, "context", index)

    def reward_state(self, site: SiteSpec, index: int) -> dict[str, np.ndarray] | None:
        """The site's adapter's reward-source states saved with state `index` (as
        `RewardSet.state_arrays`), or None if the trace holds none for it."""
        return self._state_group(site, "reward_state", index)

    def _state_group(self, site: SiteSpec, sub: str, index: int) -> dict[str, np.ndarray] | None:
        if site.records_reads:  # its reward states travel in its state blobs
            if sub != "reward_state" or index >= int(self.committed["states"]):
                return None
            from plastic.replay.memory_state import read_record, split_record

            return split_record(read_record(self, site, "state", index))[1]
        group = f"{site.group}/{sub}"
        if index >= int(self.committed["states"]) or group not in self.root:
            return None
        state = self._group_row(group, index)
        floats = [v for v in state.values() if np.issubdtype(v.dtype, np.floating)]
        if any(np.isnan(value).any() for value in floats):  # saved before the arrays existed
            return None
        return state

    def nbytes_stored(self, prefix: str = "") -> int:
        """Bytes on disk under `prefix` (a sub-path of the store)."""
        base = self.path / prefix if prefix else self.path
        return sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
