"""Creating, continuing and writing a trace store (the writer thread lives here).

`open_for_recording` creates a new store or continues an existing one (refusing another
backbone or rule unless `force`), truncating arrays to the last commit. `StoreWriter`
owns one thread and a bounded queue: the recorder hands it whole arrays to append and
commit markers; appends run in order, and a commit marker (the root `committed`
attribute) is written only after every append queued before it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from plastic.errors import TraceError
from plastic.replay.schema import (
    GROUPS,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    ArraySpec,
    SiteSpec,
    codec_for,
    rule_state_dims,
)


def create_array(group: Any, path: str, tail: tuple[int, ...], spec: ArraySpec) -> Any:
    """An empty array [0, *tail] appended along axis 0, with its dimension names."""
    return group.create_array(
        path,
        shape=(0, *tail),
        chunks=(spec.chunk, *tail),
        dtype=spec.dtype,
        compressors=[codec_for(spec.dtype)],
        dimension_names=list(spec.dims),
        fill_value=spec.fill,
    )


def create_store(path: Path, attrs: Mapping[str, Any], sites: list[SiteSpec]) -> Any:
    """A new, empty store at `path` with every fixed array (rule-state arrays come later)."""
    import zarr

    root = zarr.open_group(str(path), mode="w-", zarr_format=3)
    for group, specs in GROUPS.items():
        for name, spec in specs.items():
            create_array(root, f"{group}/{name}", (), spec)
    for site in sites:
        sub = root.require_group(site.group)
        sub.attrs.update(site.to_dict())
        for name, (tail, spec) in site.arrays().items():
            create_array(root, f"{site.group}/{name}", tail, spec)
    root.attrs.update(
        {
            "plastic_trace": {"schema": SCHEMA_NAME, "version": SCHEMA_VERSION},
            **attrs,
            "sites": [s.to_dict() for s in sites],
            "sessions": [],
            "committed": empty_commit(sites),
        }
    )
    return root


def empty_commit(sites: list[SiteSpec]) -> dict[str, Any]:
    out: dict[str, Any] = {group: 0 for group in GROUPS}
    out["sites"] = {f"site{s.index}": {"steps": 0, "rows": 0} for s in sites}
    return out


def ensure_rule_state_arrays(
    root: Any, site: SiteSpec, rule: str, state: Mapping[str, np.ndarray], committed: int
) -> None:
    """Create `rule_state/<rule>/<key>` arrays of a site if missing (length `committed`,
    filled with NaN for states saved under another rule)."""
    for key, value in state.items():
        path = f"{site.group}/rule_state/{rule}/{key}"
        value = np.asarray(value)
        if path in root:
            continue
        dtype = str(value.dtype)
        fill: Any = float("nan") if np.issubdtype(value.dtype, np.floating) else 0
        dims = rule_state_dims(key, tuple(value.shape), site)
        spec = ArraySpec(dtype, dims, 16 if value.ndim == 2 else 1024, fill)
        array = create_array(root, path, tuple(value.shape), spec)
        if committed:
            array.resize((committed, *value.shape))


def open_existing(path: Path) -> Any:
    """Open an existing store for writing (TraceError if it is not a trace store)."""
    import zarr

    from plastic.replay.reader import check_root

    try:
        root = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    except Exception as exc:
        raise TraceError(f"{path} is not a Zarr trace store ({type(exc).__name__})") from None
    check_root(root, path)
    return root


def truncate_to_commit(root: Any, sites: list[SiteSpec]) -> dict[str, Any]:
    """Cut every array back to the last committed length (after a killed writer)."""
    committed = dict(root.attrs["committed"])
    for group, specs in GROUPS.items():
        n = int(committed[group])
        for name in specs:
            _resize(root[f"{group}/{name}"], n)
    for site in sites:
        counts = committed["sites"][f"site{site.index}"]
        lengths = {
            "pre": counts["steps"],
            "post": counts["steps"],
            "token": counts["steps"],
            "flush_rows": counts["rows"],
            "checkpoint_weights": committed["checkpoints"],
            "state_weights": committed["states"],
        }
        for name, n in lengths.items():
            _resize(root[f"{site.group}/{name}"], int(n))
        if f"{site.group}/rule_state" in root:
            for _, array in root[f"{site.group}/rule_state"].arrays():
                _resize(array, int(committed["states"]))
            for _, sub in root[f"{site.group}/rule_state"].groups():
                for _, array in sub.arrays():
                    _resize(array, int(committed["states"]))
    return committed


def _resize(array: Any, n: int) -> None:
    if array.shape[0] != n:
        array.resize((n, *array.shape[1:]))


class StoreWriter:
    """One thread appending to a store in order; see the module docstring."""

    def __init__(self, root: Any, *, maxsize: int = 32) -> None:
        self.root = root
        self.queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self.bytes_appended = 0
        self._thread = threading.Thread(target=self._run, name="plastic-trace-writer", daemon=True)
        self._thread.start()

    # -- the recorder's side --------------------------------------------------------
    def append(self, path: str, data: np.ndarray) -> None:
        """Queue `data` to be appended to array `path` along axis 0 (blocks if full)."""
        self._put(("append", path, data))

    def commit(self, committed: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> None:
        """Queue the commit marker (and other root attributes) after the queued appends."""
        self._put(("attrs", {**(extra or {}), "committed": dict(committed)}))

    def wait(self) -> None:
        """Block until everything queued so far is on disk (TraceError if writing failed)."""
        done = threading.Event()
        self._put(("barrier", done))
        while not done.wait(0.5):
            if not self._thread.is_alive():
                break
        self._check()

    def close(self) -> None:
        """Finish the queue and stop the thread."""
        if self._thread.is_alive():
            self.queue.put(("stop",))
            self._thread.join()
        self._check()

    def _put(self, item: tuple[Any, ...]) -> None:
        self._check()
        self.queue.put(item)

    def _check(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise TraceError(f"writing the trace store failed: {error}") from error

    # -- the thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self.queue.get()
            op = item[0]
            if op == "stop":
                return
            if op == "barrier":
                item[1].set()
                continue
            if self.error is not None:
                continue  # keep draining so the recorder never blocks; it raises on next put
            try:
                if op == "append":
                    _, path, data = item
                    self.root[path].append(data, axis=0)
                    self.bytes_appended += data.nbytes
                elif op == "attrs":
                    self.root.attrs.update(item[1])
            except BaseException as exc:  # reported to the recorder's thread
                self.error = exc
