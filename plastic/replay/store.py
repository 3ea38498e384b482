"""Creating, continuing and writing a trace store (the writer thread lives here).

`open_for_recording` creates a new store or continues an existing one (refusing another
backbone or rule unless `force`), truncating arrays to the last commit. `StoreWriter`
owns one thread and a bounded queue: the recorder hands it whole arrays to append and
commit markers; appends run in order, and a commit marker (the root `committed`
attribute) is written only after every append queued before it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Mapping
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

CREATING = "plastic_trace_creating"


def create_array(group: Any, path: str, tail: tuple[int, ...], spec: ArraySpec) -> Any:
    """An empty array [0, *tail] appended along axis 0, with its dimension names."""
    from zarr.codecs import Crc32cCodec

    # A checksum per chunk (a flipped bit or a truncated chunk fails loudly), and every
    # chunk written even when it holds only the fill value: in a committed range a missing
    # chunk is then damage, never "no spikes" (the reader relies on both, see CHECKED_CODEC).
    array = group.create_array(
        path,
        shape=(0, *tail),
        chunks=(spec.chunk, *tail),
        dtype=spec.dtype,
        compressors=[codec_for(spec.dtype), Crc32cCodec()],
        dimension_names=list(spec.dims),
        fill_value=spec.fill,
    )
    return writable(array)


def writable(array: Any) -> Any:
    """The array as the writer must use it: chunks that hold only the fill value are
    written too (Zarr skips them by default, and they would then read as missing)."""
    return array.with_config({"write_empty_chunks": True})


def create_store(path: Path, attrs: Mapping[str, Any], sites: list[SiteSpec]) -> Any:
    """A new, empty store at `path` with every fixed array (rule-state arrays come later)."""
    import zarr

    # "a", not "w-": the directory already holds the writer's lock file (no zarr.json yet).
    # CREATING marks a store whose creation has not finished (a killed start-up).
    root = zarr.open_group(str(path), mode="a", zarr_format=3, attributes={CREATING: True})
    for group, specs in GROUPS.items():
        for name, spec in specs.items():
            create_array(root, f"{group}/{name}", (), spec)
    for site in sites:
        sub = root.require_group(site.group)
        sub.attrs.update(site.to_dict())
        for name, (tail, spec) in site.arrays().items():
            create_array(root, f"{site.group}/{name}", tail, spec)
    root.attrs.put(
        {
            "plastic_trace": {"schema": SCHEMA_NAME, "version": SCHEMA_VERSION},
            **attrs,
            "sites": [s.to_dict() for s in sites],
            "sessions": [],
            "committed": empty_commit(sites),
        }
    )
    return root


def unfinished_creation(path: Path) -> bool:
    """Whether `path` is a store whose creation was killed before it finished (it holds
    no recorded data: it may be removed and created again)."""
    import json

    try:
        attrs = json.loads((path / "zarr.json").read_text(encoding="utf-8")).get("attributes")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(attrs, dict) and attrs.get(CREATING) is True and "plastic_trace" not in attrs


def clear_unfinished(path: Path, keep: str) -> None:
    """Remove what a killed creation left in `path`, except the file named `keep`."""
    import shutil

    for entry in path.iterdir():
        if entry.name == keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def empty_commit(sites: list[SiteSpec]) -> dict[str, Any]:
    out: dict[str, Any] = {group: 0 for group in GROUPS}
    out["sites"] = {f"site{s.index}": empty_site_counts(s) for s in sites}
    return out


def empty_site_counts(site: SiteSpec) -> dict[str, int]:
    """A site's commit counts before anything is recorded."""
    counts = {"steps": 0, "rows": 0}
    if site.records_reads:
        counts.update(state_bytes=0, checkpoint_bytes=0)
    return counts


def ensure_state_arrays(
    root: Any, site: SiteSpec, group: str, state: Mapping[str, np.ndarray], committed: int
) -> None:
    """Create a site's `<group>/<key>` per-state arrays if missing (length `committed`,
    filled with NaN for states saved before they existed or under another rule): rule
    states (`rule_state/<rule>`), reward states, a readout's context signature."""
    for key, value in state.items():
        path = f"{site.group}/{group}/{key}"
        value = np.asarray(value)
        if path in root:
            continue
        dtype = str(value.dtype)
        fill: Any = float("nan") if np.issubdtype(value.dtype, np.floating) else 0
        dims = rule_state_dims(key, tuple(value.shape), site)
        spec = ArraySpec(dtype, dims, 16 if value.ndim == 2 else 1024, fill)
        array = create_array(root, path, tuple(value.shape), spec)
        if committed:  # rows of the states saved before: written, so no chunk is missing
            array.resize((committed, *value.shape))
            array[:committed] = np.full((committed, *value.shape), fill, dtype=value.dtype)


def check_before_continuing(path: Path) -> None:
    """TraceError if the store's committed data lost a chunk: recording more into a
    damaged store would only bury the damage."""
    from plastic.replay.reader import TraceReader

    try:
        TraceReader(path).check_chunks_present()
    except TraceError as exc:
        raise TraceError(f"{exc}; not recording into it (record into a new store)") from None


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
        for name, n in site.committed_lengths(counts, committed).items():
            _resize(root[f"{site.group}/{name}"], int(n))
        # one row per saved state: rule states (rule_state/<rule>/*), reward states and a
        # readout's context signature; a killed writer may have grown any of them
        for group in ("rule_state", "reward_state", "context"):
            if f"{site.group}/{group}" in root:
                for array in _arrays_below(root[f"{site.group}/{group}"]):
                    _resize(array, int(committed["states"]))
    return committed


def _arrays_below(group: Any) -> Iterator[Any]:
    """Every array of a Zarr group and of its subgroups."""
    for _, array in group.arrays():
        yield array
    for _, sub in group.groups():
        yield from _arrays_below(sub)


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
        self._arrays: dict[str, Any] = {}  # path -> Array (opened once)
        self._lengths: dict[str, int] = {}  # path -> rows appended (the allocation may be longer)
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

    def close_quietly(self) -> None:
        """Stop the thread after a failure, keeping the first error (already reported)."""
        with contextlib.suppress(TraceError):
            self.close()

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
            batch = [item]
            while item[0] == "append":  # gather the appends queued behind it
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
            appends = [i for i in batch if i[0] == "append"]
            rest = [i for i in batch if i[0] != "append"]
            if appends and self.error is None:
                try:
                    self._append_all(appends)
                except BaseException as exc:  # reported to the recorder's thread
                    self.error = exc
            for op in rest:
                if op[0] == "stop":
                    self._trim()
                    return
                if op[0] == "barrier":
                    op[1].set()
                elif op[0] == "attrs" and self.error is None:
                    try:
                        self.root.attrs.update(op[1])
                    except BaseException as exc:
                        self.error = exc

    def _array(self, path: str) -> Any:
        array = self._arrays.get(path)
        if array is None:
            array = self._arrays[path] = writable(self.root[path])
            self._lengths[path] = array.shape[0]
        return array

    def _append_all(self, items: list[tuple[Any, ...]]) -> None:
        """Append queued arrays, one write per array path (concatenated, in order).

        Arrays grow by doubling their allocated length (the commit marker, not the shape,
        says what is valid), so most appends write chunks without rewriting metadata.
        """
        import asyncio

        from zarr.core.sync import sync

        per_path: dict[str, list[np.ndarray]] = {}
        for _, path, data in items:
            per_path.setdefault(path, []).append(data)
        writes = []
        for path, parts in per_path.items():
            data = parts[0] if len(parts) == 1 else np.concatenate(parts)
            array = self._array(path)
            start = self._lengths[path]
            stop = start + data.shape[0]
            if stop > array.shape[0]:
                grown = max(stop, 2 * array.shape[0], array.chunks[0])
                array.resize((grown, *array.shape[1:]))
            writes.append(array.async_array.setitem(slice(start, stop), data))
            self._lengths[path] = stop
            self.bytes_appended += data.nbytes

        async def write_all() -> None:  # every array's chunks concurrently
            await asyncio.gather(*writes)

        sync(write_all())

    def _trim(self) -> None:
        """On a clean close: cut every array to what was appended (no allocated tail)."""
        if self.error is not None:
            return
        try:
            for path, array in self._arrays.items():
                n = self._lengths[path]
                if array.shape[0] != n:
                    array.resize((n, *array.shape[1:]))
        except BaseException as exc:
            self.error = exc
