"""Prequential reading of a byte stream, split in two exact halves for readout adapters.

The backbone is frozen and a readout adapter only adds to the logits (nothing it does
feeds back into the backbone), so reading a stream with readout adapters factorises:

1. `backbone_pass`: one pass of the frozen backbone over <bos> + data in its fast
   parallel mode (chunks, state carried), keeping the frozen logits [N, V] (float32)
   and the spikes of the readout site(s) [N, T, n] (bit-packed along n);
2. `replay_bits`: the adapters read that pass token by token through
   `PlasticModel.replay`, the very code `forward` runs after the backbone (contribute,
   learn_transition, rewards), and give the bits of every byte, predicted before the
   adapters learn from it.

A pass is stored as `.npy` files plus a JSON record (`save_pass` / `load_pass`; no
pickle), keyed by the backbone's content hash and the data's sha256, so each stream is
read by the backbone once. `tests/plasticity/test_prequential.py` checks that the
replayed bits equal those of the real path (PlasticModel fed token by token).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from plastic.errors import ConfigError
from plastic.kernels_numba.adapter_kernels import logits_bits, softmax_normalisers
from plastic.kernels_numba.threads import kernel_threads
from plastic.models.spiking_lm import SpikingLM
from plastic.models.tokenizer import BOS
from plastic.plasticity.readout import BitsRequest, SiteCounts

if TYPE_CHECKING:
    from plastic.plasticity.model import PlasticModel

PASS_FORMAT_VERSION = 1
LN2 = math.log(2.0)


@dataclass
class BackbonePass:
    """The frozen backbone's reading of <bos> + data: logits and packed site spikes.

    Position s reads token ids[s] (ids[0] = <bos>) and its logits predict data[s].
    """

    data: bytes
    logits: np.ndarray  # [N, V] float32, N = len(data)
    spikes: dict[str, np.ndarray]  # site -> [N, T, ceil(n / 8)] uint8 (np.packbits, axis -1)
    sizes: dict[str, int]  # site -> n (neurons)
    backbone_hash: str
    seconds: float  # wall-clock of the backbone pass that produced it

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(self.spikes)

    @property
    def ids(self) -> list[int]:
        return [BOS, *self.data[:-1]] if self.data else []

    def __len__(self) -> int:
        return len(self.data)

    def frozen_bits(self) -> np.ndarray:
        """Bits of every byte under the frozen backbone [N] (float64)."""
        return logits_bits(self.logits, np.frombuffer(self.data, np.uint8))

    def site_spikes(self, site: str, start: int, stop: int) -> np.ndarray:
        """Spikes of positions start:stop as a uint8 0/1 view [T, 1, S, n] (as hooks see)."""
        n = self.sizes[site]
        dense = np.unpackbits(self.spikes[site][start:stop], axis=-1, count=n)
        return dense.transpose(1, 0, 2)[:, None]

    def spike_counts(self, site: str, start: int, stop: int) -> np.ndarray:
        """Spikes per neuron over the T steps of positions start:stop [S, n] (float32)."""
        n = self.sizes[site]
        dense = np.unpackbits(self.spikes[site][start:stop], axis=-1, count=n)
        return dense.sum(axis=1, dtype=np.float32)


def _backbone(model: SpikingLM | PlasticModel) -> SpikingLM:
    """The frozen backbone of a model wrapped with adapters, or the model itself (duck-typed:
    importing `plastic.plasticity.model` here would close an import cycle via the engine)."""
    return model.base_model if hasattr(model, "adapters") else model


def data_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@torch.no_grad()
def backbone_pass(
    model: SpikingLM,
    data: bytes,
    sites: Sequence[str] = ("readout",),
    *,
    chunk: int = 512,
    progress: Callable[[int], None] | None = None,
) -> BackbonePass:
    """Read <bos> + data with the frozen backbone in parallel chunks; see the module doc."""
    if not data:
        raise ConfigError("nothing to read: the stream is empty")
    model = _backbone(model)
    n = len(data)
    vocab = model.config.vocab_size
    info = {name: model.sites.info[name] for name in sites}
    logits = np.empty((n, vocab), np.float32)
    packed = {
        name: np.empty((n, site.timesteps, (site.size + 7) // 8), np.uint8)
        for name, site in info.items()
    }
    cursor = [0]

    def hook_for(name: str):
        def hook(site, spikes: torch.Tensor) -> None:
            s = spikes.detach().cpu().numpy()[:, 0]  # [T, S, n]
            start = cursor[0]
            packed[name][start : start + s.shape[1]] = np.packbits(
                s.transpose(1, 0, 2) != 0, axis=-1
            )

        return hook

    handles = [model.sites.add_hook(name, hook_for(name)) for name in info]
    tokens = torch.tensor([BOS, *data[:-1]], dtype=torch.long)
    state = None
    t0 = time.perf_counter()
    try:
        for start in range(0, n, chunk):
            cursor[0] = start
            piece = tokens[start : start + chunk].unsqueeze(0)
            out = model(piece, state)
            state = out.state
            logits[start : start + piece.shape[1]] = out.logits[0].float().numpy()
            if progress is not None:
                progress(piece.shape[1])
    finally:
        for handle in handles:
            handle.remove()
    seconds = time.perf_counter() - t0
    backbone = getattr(model, "content_hash", None) or ""
    sizes = {name: site.size for name, site in info.items()}
    return BackbonePass(data, logits, packed, sizes, backbone, seconds)


def save_pass(bpass: BackbonePass, directory: Path) -> None:
    """Store a pass as .npy files and pass.json (written last: a complete pass has it)."""
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "logits.npy", bpass.logits)
    np.save(directory / "data.npy", np.frombuffer(bpass.data, np.uint8))
    for k, arr in enumerate(bpass.spikes.values()):
        np.save(directory / f"spikes{k}.npy", arr)
    meta = {
        "format_version": PASS_FORMAT_VERSION,
        "backbone_hash": bpass.backbone_hash,
        "data_sha256": data_hash(bpass.data),
        "bytes": len(bpass.data),
        "sites": list(bpass.spikes),
        "sizes": bpass.sizes,
        "seconds": bpass.seconds,
    }
    (directory / "pass.json").write_text(json.dumps(meta, indent=2))


def load_pass(directory: Path, data: bytes, backbone_hash: str) -> BackbonePass | None:
    """The pass stored in `directory` if it is for exactly this data and backbone."""
    meta_path = directory / "pass.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if (
        meta.get("format_version") != PASS_FORMAT_VERSION
        or meta.get("backbone_hash") != backbone_hash
        or meta.get("data_sha256") != data_hash(data)
    ):
        return None
    logits = np.load(directory / "logits.npy", allow_pickle=False)
    spikes = {
        name: np.load(directory / f"spikes{k}.npy", allow_pickle=False)
        for k, name in enumerate(meta["sites"])
    }
    return BackbonePass(
        data, logits, spikes, dict(meta["sizes"]), backbone_hash, float(meta["seconds"])
    )


def cached_pass(
    model: SpikingLM,
    data: bytes,
    cache_dir: Path | None,
    sites: Sequence[str] = ("readout",),
    *,
    chunk: int = 512,
) -> tuple[BackbonePass, bool]:
    """A pass from `cache_dir/<backbone>-<data>` if stored there, else computed (and stored).

    Returns (pass, whether it came from the cache).
    A cache is best effort: one that cannot be read (corrupt, unreadable) is recomputed,
    and one that cannot be written is left unwritten.
    """
    backbone = getattr(model, "content_hash", None) or ""
    directory = None
    if cache_dir is not None and backbone:
        directory = cache_dir / f"{backbone[:16]}-{data_hash(data)[:16]}-{'+'.join(sites)}"
        try:
            stored = load_pass(directory, data, backbone)
        except (OSError, ValueError, KeyError, TypeError):
            stored = None
        if stored is not None and _pass_shapes_fit(stored, model):
            return stored, True
    bpass = backbone_pass(model, data, sites, chunk=chunk)
    if directory is not None:
        with contextlib.suppress(OSError):
            save_pass(bpass, directory)
    return bpass, False


def _pass_shapes_fit(bpass: BackbonePass, model: SpikingLM) -> bool:
    """Whether a stored pass has the shapes this backbone would give it."""
    model = _backbone(model)
    n = len(bpass.data)
    if bpass.logits.shape != (n, model.config.vocab_size):
        return False
    for name, arr in bpass.spikes.items():
        site = model.sites.info.get(name)
        if site is None or arr.shape != (n, site.timesteps, (site.size + 7) // 8):
            return False
    return True


def _chunks(n: int, chunk: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, chunk):
        yield start, min(start + chunk, n)


def replay_bits(plastic: PlasticModel, bpass: BackbonePass, *, chunk: int = 512) -> np.ndarray:
    """Bits of every byte [N] with `plastic`'s adapters reading the pass prequentially.

    The adapters' stream is restarted (<bos>) and the pass is fed as `forward` would feed
    it (learning per `plastic.learning`, phase per `observing()`/`frozen()`); each byte is
    scored with the weights before it is learnt from. Adapters keep what they learn.
    """
    targets = np.frombuffer(bpass.data, np.uint8)
    ids = bpass.ids
    bits = np.empty(len(bpass), np.float64)
    for start, stop in _chunks(len(bpass), chunk):
        logits = bpass.logits[start:stop][None].copy()
        spikes = {site: bpass.site_spikes(site, start, stop) for site in bpass.spikes}
        plastic.replay(ids[start:stop], logits, spikes)
        bits[start:stop] = logits_bits(logits[0], targets[start:stop])
    return bits


@dataclass
class ScoringPass:
    """A pass prepared for repeated scoring (`scored_bits`): every site's spike counts and
    the frozen rows' softmax normalisers and bits, computed once (the backbone is frozen)."""

    bpass: BackbonePass
    counts: dict[str, SiteCounts]
    tokens: np.ndarray  # [N] int64, the ids read
    targets: np.ndarray  # [N] int64, the bytes predicted
    norm_m: np.ndarray  # [N] float64
    norm_z: np.ndarray  # [N] float64
    frozen_bits: np.ndarray  # [N] float64
    layer_cache: dict[str, Any] = field(default_factory=dict)  # BitsRequest.cache

    @classmethod
    def of(cls, bpass: BackbonePass) -> ScoringPass:
        counts = {
            site: SiteCounts.from_counts(bpass.spike_counts(site, 0, len(bpass)))
            for site in bpass.spikes
        }
        n = len(bpass)
        norm_m, norm_z = np.empty(n, np.float64), np.empty(n, np.float64)
        softmax_normalisers(bpass.logits, norm_m, norm_z)
        return cls(
            bpass,
            counts,
            np.asarray(bpass.ids, np.int64),
            np.frombuffer(bpass.data, np.uint8).astype(np.int64),
            norm_m,
            norm_z,
            bpass.frozen_bits(),
        )


def scored_bits(plastic: PlasticModel, prepared: ScoringPass) -> np.ndarray:
    """Bits of every byte [N] of the pass under `plastic`'s current adapters, learning
    nothing (as `PlasticModel.score` would give them). Layers that can (`score_rows`) score
    every position in one kernel call: a single layer evaluates its cache mix at the target
    byte alone (the same probability to ~1e-7 relative: the float32 logits are skipped),
    several layers adapt the rows in turn. Other layers replay the pass position by
    position inside `frozen()` (`replay_bits`)."""
    bpass = prepared.bpass
    layers = [layer for a in plastic.active_adapters() for layer in a.layers.values()]
    if not all(hasattr(layer, "score_rows") for layer in layers):
        with plastic.frozen():
            return replay_bits(plastic, bpass)
    if not layers:
        return prepared.frozen_bits.copy()
    with kernel_threads():
        if len(layers) == 1:
            (layer,) = layers
            out = np.empty(len(bpass), np.float64)
            request = BitsRequest(
                prepared.targets,
                prepared.norm_m,
                prepared.norm_z,
                prepared.frozen_bits,
                out,
                prepared.layer_cache,
            )
            counts = prepared.counts[layer.site.name]
            layer.score_rows(bpass.logits, prepared.tokens, counts, request)
            return out
        logits = bpass.logits.copy()
        for layer in layers:
            layer.score_rows(logits, prepared.tokens, prepared.counts[layer.site.name])
    return logits_bits(logits, np.frombuffer(bpass.data, np.uint8))
