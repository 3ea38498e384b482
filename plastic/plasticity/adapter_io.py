"""Saving and loading adapters: `adapter_config.json` + `adapter_model.safetensors` (PEFT layout).

One adapter per directory; `PlasticModel.save(dir)` writes the "default" adapter into
`dir` and any other adapter into `dir/<name>/`. The JSON holds the format version, the
plastic version, the adapter's config with its *effective* rule and reward parameters,
the backbone's content hash, the sites hit and the counters. The safetensors file holds,
as plain arrays (nothing is pickled):

    sites.<site>.weights            float32 [n_pre, n_post]   the plastic weights
    sites.<site>.rule.<key>         the rule's state (traces, eligibility, baseline, step)
    sites.<site>.<key>              the layer's `extra_state` (a residual layer's fixed
                                    `projection`, a readout layer's `context.*` signature)
    rewards.<source>.<key>          reward sources' states (e.g. surprise statistics)
    rng.pcg64                       uint64 [6]: the adapter's RNG state

so a loaded adapter keeps learning exactly where it stopped. Loading onto another
backbone, a corrupt file or arrays of the wrong shape raise a one-line CheckpointError.
Adapters saved in format version 1 are converted on load when they run the same under
version 2, and refused in one line saying how to convert them otherwise (`config_v1`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from plastic import __version__
from plastic.errors import CheckpointError, ConfigError, PlasticError, one_line
from plastic.plasticity.adapter import Adapter, AdapterCounters
from plastic.plasticity.config import ADAPTER_FORMAT_VERSION, AdapterConfig
from plastic.plasticity.config_v1 import upgrade_config
from plastic.rules import RULE_API_VERSION
from plastic.rules.backends import host_backend

if TYPE_CHECKING:
    from plastic.plasticity.model import PlasticModel

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
FORMAT = "plastic-adapter"
DEFAULT_NAME = "default"
_MASK64 = (1 << 64) - 1


def rng_to_array(rng: np.random.Generator) -> np.ndarray:
    """A PCG64 generator's full state as uint64 [state_hi, state_lo, inc_hi, inc_lo, has, u]."""
    st = rng.bit_generator.state
    if st.get("bit_generator") != "PCG64":
        raise ConfigError(f"cannot save RNG {st.get('bit_generator')!r} (PCG64 only)")
    s, inc = int(st["state"]["state"]), int(st["state"]["inc"])
    values = [s >> 64, s & _MASK64, inc >> 64, inc & _MASK64, st["has_uint32"], st["uinteger"]]
    return np.array(values, dtype=np.uint64)


def rng_from_array(array: np.ndarray) -> np.random.Generator:
    """Inverse of `rng_to_array`."""
    v = [int(x) for x in np.asarray(array, dtype=np.uint64).reshape(-1)]
    if len(v) != 6:
        raise CheckpointError(f"RNG state must hold 6 numbers, got {len(v)}")
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": (v[0] << 64) | v[1], "inc": (v[2] << 64) | v[3]},
        "has_uint32": v[4],
        "uinteger": v[5],
    }
    return rng


def adapter_directory(root: Path, name: str) -> Path:
    return root if name == DEFAULT_NAME else root / name


def save_adapters(model: PlasticModel, directory: str | Path) -> list[Path]:
    """Write every adapter of `model` under `directory`; returns the folders written."""
    if not model.adapters:
        raise ConfigError("no adapter is attached: nothing to save")
    root = Path(directory)
    written = []
    for name, adapter in model.adapters.items():
        out = adapter_directory(root, name)
        write_adapter(model, adapter, out)
        written.append(out)
    return written


def save_atomically(
    model: PlasticModel, out: str | Path, *, overwrite: bool = False, hint: str = ""
) -> list[Path]:
    """Save every adapter into a temporary sibling of `out`, then rename it to `out`: an
    interrupted or failed save (Ctrl-C, a full disk) leaves `out` as it was. An existing
    `out` (a file, or a non-empty directory) is refused unless `overwrite`; `hint` ends
    that refusal. Returns the folders written; OSError becomes a one-line CheckpointError."""
    import shutil
    import tempfile

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        kind = "a directory that is not empty" if out.is_dir() else "a file"
        raise CheckpointError(f"{out} already exists ({kind}); nothing written{hint}")
    tmp: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        umask = os.umask(0o22)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # as a plain mkdir would (mkdtemp makes it private)
        written = [out / p.relative_to(tmp) for p in save_adapters(model, tmp)]
        old = None
        if out.exists() or out.is_symlink():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
        tmp = None
        if old is not None:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    except (OSError, SafetensorError) as exc:  # safetensors wraps its I/O errors
        raise CheckpointError(f"cannot save to {out}: {one_line(exc)}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return written


def write_adapter(model: PlasticModel, adapter: Adapter, out: Path) -> None:
    """Write one adapter's config and arrays into `out` (created), atomically per file."""
    out.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    rule_params = None
    for site, layer in adapter.layers.items():
        syn = layer.synapses
        tensors[f"sites.{site}.weights"] = np.ascontiguousarray(syn.weights.copy())
        for key, value in syn.state_arrays().items():
            tensors[f"sites.{site}.rule.{key}"] = np.ascontiguousarray(value)
        for key, value in layer.extra_state().items():
            tensors[f"sites.{site}.{key}"] = np.ascontiguousarray(value)
        rule_params = syn.params.to_dict()
    for key, value in adapter.rewards.state_arrays().items():
        tensors[f"rewards.{key}"] = np.ascontiguousarray(value)
    tensors["rng.pcg64"] = rng_to_array(adapter.rng)
    config = adapter.config.to_dict()
    config["rule_params"] = rule_params or {}
    config["reward_params"] = adapter.rewards.params_dict()
    info = model.config
    doc = {
        "format": FORMAT,
        "format_version": ADAPTER_FORMAT_VERSION,
        "plastic_version": __version__,
        "name": adapter.name,
        "enabled": adapter.enabled,
        "config": config,
        "rule": {"name": adapter.config.rule, "api_version": RULE_API_VERSION},
        "backbone": {
            "content_hash": model.backbone_hash,
            "name": info.name,
            "vocab_size": info.vocab_size,
        },
        "sites": adapter.sites,
        "counters": adapter.counters.to_dict(),
        "guards": model.guards.to_dict(),
    }
    meta = {"format": FORMAT, "backbone_hash": model.backbone_hash}
    tmp = out / (WEIGHTS_FILE + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, out / WEIGHTS_FILE)
    tmp_cfg = out / (CONFIG_FILE + ".tmp")
    tmp_cfg.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp_cfg, out / CONFIG_FILE)


def find_adapter_dirs(directory: str | Path) -> list[Path]:
    """`directory` itself if it holds an adapter, then its subfolders that do."""
    root = Path(directory)
    if not root.is_dir():
        raise CheckpointError(f"{root}: no such adapter directory")
    found = [root] if (root / CONFIG_FILE).is_file() else []
    found += sorted(p for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file())
    if not found:
        raise CheckpointError(f"{root}: not an adapter directory (no {CONFIG_FILE})")
    return found


def read_adapter_config(directory: Path) -> dict[str, Any]:
    """Read and check one adapter_config.json (CheckpointError with one line on any problem)."""
    path = directory / CONFIG_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{directory}: not an adapter directory (no {CONFIG_FILE})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path}: corrupt adapter config ({exc.__class__.__name__})"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a plastic adapter config")
    version = doc.get("format_version", 0)
    if not isinstance(version, int) or version > ADAPTER_FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {version!r} is newer than this plastic understands "
            f"({ADAPTER_FORMAT_VERSION}); upgrade plastic"
        )
    for key in ("name", "config", "backbone", "sites"):
        if key not in doc:
            raise CheckpointError(f"{path}: adapter config lacks {key!r}")
    return doc


def load_adapters(
    model: PlasticModel, directory: str | Path, *, replace: bool = False
) -> list[str]:
    """Load every adapter found in `directory` onto `model`; returns their names."""
    docs = [(d, read_adapter_config(d)) for d in find_adapter_dirs(directory)]
    for d, doc in docs:  # check every backbone before attaching anything
        check_backbone(model, d, doc)
    names: list[str] = []
    try:
        for d, doc in docs:
            names.append(load_adapter(model, d, doc, replace=replace))
    except Exception:
        for name in names:  # all or nothing
            model.delete_adapter(name)
        raise
    return names


def check_backbone(model: PlasticModel, directory: Path, doc: dict[str, Any]) -> None:
    """CheckpointError unless the adapter was saved on this very backbone."""
    backbone = doc.get("backbone") or {}
    saved = str(backbone.get("content_hash", ""))
    if saved != model.backbone_hash:
        raise CheckpointError(
            f"{directory}: this adapter was trained on backbone {saved[:12] or '?'} "
            f"({backbone.get('name', '?')}), not on the loaded model {model.backbone_hash[:12]} "
            f"({model.config.name}); load it onto the backbone it was saved from"
        )


def load_adapter(
    model: PlasticModel, directory: Path, doc: dict[str, Any], *, replace: bool = False
) -> str:
    """Attach the adapter saved in `directory` (described by `doc`) to `model`."""
    name = str(doc["name"])
    if name in model.adapters:
        if not replace:
            raise CheckpointError(f"{directory}: an adapter named {name!r} is already attached")
        model.delete_adapter(name)
    saved = doc["config"]
    try:
        if doc.get("format_version", 0) < ADAPTER_FORMAT_VERSION:
            saved = upgrade_config(saved)
        if "backend" in saved:  # where it ran, not what it learnt
            saved = {**saved, "backend": host_backend(saved["backend"])}
        config = AdapterConfig.from_dict(saved)
    except PlasticError as exc:
        raise CheckpointError(f"{directory / CONFIG_FILE}: {exc}") from None
    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: missing {WEIGHTS_FILE}")
    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt adapter weights ({exc})") from None
    try:
        adapter = model.add_adapter(name, config)
    except PlasticError as exc:
        raise CheckpointError(f"{directory}: {exc}") from None
    try:
        _fill_adapter(adapter, doc, arrays, path)
    except Exception:
        model.delete_adapter(name)
        raise
    return name


def _fill_adapter(
    adapter: Adapter, doc: dict[str, Any], arrays: dict[str, np.ndarray], path: Path
) -> None:
    _check_learning_state(doc, arrays, path, _self_checked(adapter))
    if list(doc["sites"]) != adapter.sites:
        raise CheckpointError(
            f"{path}: saved for sites {doc['sites']}, but its config hits {adapter.sites} here"
        )
    for site, layer in adapter.layers.items():
        prefix = f"sites.{site}."
        rule_state = {
            key[len(prefix + "rule.") :]: value
            for key, value in arrays.items()
            if key.startswith(prefix + "rule.")
        }
        shape_of = getattr(layer.synapses, "expected_weights_shape", None)
        shape = shape_of(rule_state) if shape_of else layer.weights.shape
        dtype = np.float64 if shape_of else np.float32
        weights = _array(arrays, prefix + "weights", shape, dtype, path)
        try:
            layer.synapses.load(weights, rule_state)
        except PlasticError as exc:
            raise CheckpointError(f"{path}: rule state of site {site!r} is bad ({exc})") from None
        except (KeyError, ValueError, IndexError) as exc:
            raise CheckpointError(f"{path}: rule state of site {site!r} is bad ({exc})") from None
        extra = {
            key: _array(arrays, prefix + key, value.shape, value.dtype.type, path)
            for key, value in layer.extra_state().items()
        }
        try:
            layer.load_extra_state(extra)
        except ValueError as exc:
            raise CheckpointError(f"{path}: site {site!r}: {exc}") from None
    rewards = {k[len("rewards.") :]: v for k, v in arrays.items() if k.startswith("rewards.")}
    adapter.rewards.load_state_arrays(rewards)
    if "rng.pcg64" in arrays:
        adapter.rng = rng_from_array(arrays["rng.pcg64"])
    adapter.counters = AdapterCounters.from_dict(dict(doc.get("counters") or {}))
    adapter.enabled = bool(doc.get("enabled", True))


def _self_checked(adapter: Adapter) -> tuple[str, ...]:
    """Prefixes of the arrays whose layers check their own integer state on load (the
    memory's synapse links use -1 for "none")."""
    return tuple(
        f"sites.{site}.rule."
        for site, layer in adapter.layers.items()
        if hasattr(layer.synapses, "expected_weights_shape")
    )


def _check_learning_state(
    doc: dict[str, Any], arrays: dict[str, np.ndarray], path: Path, self_checked: tuple[str, ...]
) -> None:
    """CheckpointError for learning state that would only fail later, mid-reply: non-finite
    traces, eligibility or baselines, negative integer state, wrong-typed counters."""
    for key, value in sorted(arrays.items()):
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise CheckpointError(f"{path}: {key} holds NaN or infinite values")
        own = key.startswith(self_checked) if self_checked else False
        if value.dtype.kind == "i" and value.size and value.min() < 0 and not own:
            raise CheckpointError(f"{path}: {key} holds negative values")
        if value.dtype.kind not in "fiub":
            raise CheckpointError(f"{path}: {key} has unsupported dtype {value.dtype}")
    rng = arrays.get("rng.pcg64")
    if rng is not None and (rng.dtype != np.uint64 or rng.shape != (6,)):
        raise CheckpointError(f"{path}: rng.pcg64 must be 6 uint64 numbers")
    counters = doc.get("counters") or {}
    if not isinstance(counters, dict):
        raise CheckpointError(f"{path.parent / CONFIG_FILE}: counters must be an object")
    for name, default in AdapterCounters().__dict__.items():
        value = counters.get(name, default)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, int) and not (number and value == int(value) and value >= 0):
            raise CheckpointError(
                f"{path.parent / CONFIG_FILE}: counter {name} must be a whole number >= 0, "
                f"not {value!r}"
            )
        if isinstance(default, float) and not (number and np.isfinite(value)):
            raise CheckpointError(
                f"{path.parent / CONFIG_FILE}: counter {name} must be a finite number, "
                f"not {value!r}"
            )
    if not isinstance(doc.get("enabled", True), bool):
        raise CheckpointError(f"{path.parent / CONFIG_FILE}: enabled must be true or false")


def _array(
    arrays: dict[str, np.ndarray], key: str, shape: tuple[int, ...], dtype: type, path: Path
) -> np.ndarray:
    if key not in arrays:
        raise CheckpointError(f"{path}: missing array {key!r}")
    value = arrays[key]
    if value.shape != tuple(shape) or value.dtype != dtype:
        raise CheckpointError(
            f"{path}: {key} has shape {list(value.shape)} ({value.dtype}), "
            f"this model needs {list(shape)} ({np.dtype(dtype)})"
        )
    if not np.all(np.isfinite(value)):
        raise CheckpointError(f"{path}: {key} holds NaN or infinite values")
    return value
