"""Backbone checkpoints: `model.safetensors` + `config.json`, identified by a content hash.

The content hash is the sha256 of every tensor (name, dtype, shape, bytes) in name
order and (hash version 2) of the config's model section, so an edited config is another
backbone. It is written into config.json and checked on every load, so a corrupt or
swapped weight file is caught; adapters and traces record it to name their backbone.
Version-1 checkpoints (the tensors only; the shipped model is one) load and keep their
hash. The config is checked (types, ranges, and every tensor shape against the weight
file's header) before a tensor is allocated. Nothing on the load path unpickles.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from plastic.errors import CheckpointError, ConfigError
from plastic.models.config import PRESETS, ModelConfig
from plastic.models.spiking_lm import SpikingLM

FORMAT_VERSION = 1
HASH_VERSION = 2  # 1: tensors only; 2: tensors and the config's model section
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DEFAULT_MODEL_DIR = Path(__file__).parent / "default"


def content_hash(tensors: dict[str, torch.Tensor], model_config: dict | None = None) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in name order, then over
    the model config (canonical JSON) when given (hash version 2; None: version 1)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    if model_config is not None:
        canonical = json.dumps(model_config, sort_keys=True, separators=(",", ":"))
        h.update(b"model|" + canonical.encode())
    return h.hexdigest()


def model_hash(model: SpikingLM) -> str:
    """Content hash (version 2) of a model's current weights and config."""
    return content_hash(model.state_dict(), model.config.to_dict())


def save_model(model: SpikingLM, directory: str | Path, meta: dict[str, Any] | None = None) -> str:
    """Write weights and config to `directory` (created); return the content hash."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    digest = content_hash(tensors, model.config.to_dict())
    tmp = out / (WEIGHTS_FILE + ".tmp")
    save_file(tensors, str(tmp), metadata={"content_hash": digest, "format": "plastic-backbone"})
    tmp.replace(out / WEIGHTS_FILE)
    doc = {
        "format_version": FORMAT_VERSION,
        "hash_version": HASH_VERSION,
        "content_hash": digest,
        "parameters": model.num_parameters(),
        "model": model.config.to_dict(),
        "meta": meta or {},
    }
    tmp_cfg = out / (CONFIG_FILE + ".tmp")
    tmp_cfg.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    tmp_cfg.replace(out / CONFIG_FILE)
    return digest


def read_config(directory: str | Path) -> dict[str, Any]:
    """Read and sanity-check a checkpoint's config.json."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a model checkpoint (no {CONFIG_FILE})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt config ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or "model" not in doc or "content_hash" not in doc:
        raise CheckpointError(f"{path}: not a plastic model config")
    if not isinstance(doc["model"], dict) or not isinstance(doc["content_hash"], str):
        raise CheckpointError(f"{path}: not a plastic model config (bad model or content_hash)")
    if doc.get("hash_version", 1) not in (1, HASH_VERSION):
        raise CheckpointError(
            f"{path}: hash version {doc.get('hash_version')!r} is unknown to this plastic "
            f"(it reads 1 and {HASH_VERSION}); upgrade plastic"
        )
    if not isinstance(doc.get("format_version", 0), int):
        raise CheckpointError(f"{path}: format_version must be an integer")
    if doc.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {doc['format_version']} is newer than this plastic "
            f"understands ({FORMAT_VERSION}); upgrade plastic"
        )
    return doc


def load_model(directory: str | Path, *, verify: bool = True) -> SpikingLM:
    """Load a checkpoint directory; a missing, corrupt or mismatched file is a CheckpointError."""
    directory = Path(directory)
    doc = read_config(directory)
    try:
        cfg = ModelConfig.from_dict(doc["model"])
    except ConfigError as exc:
        raise CheckpointError(f"{directory}: {exc}") from None
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory}: missing {WEIGHTS_FILE}")
    check_shapes(cfg, weights)  # before anything of the config's size is allocated
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: corrupt weights file ({exc})") from None
    if verify:
        hashed_config = doc["model"] if doc.get("hash_version", 1) >= 2 else None
        digest = content_hash(tensors, hashed_config)
        if digest != doc["content_hash"]:
            raise CheckpointError(
                f"{weights}: content hash mismatch (file {digest[:12]}, config "
                f"{str(doc['content_hash'])[:12]}): the weights are corrupt or from another model"
            )
    model = SpikingLM(cfg)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{weights}: weights do not fit the config ({first})") from None
    model.content_hash = doc["content_hash"]
    model.eval()
    return model


def check_shapes(cfg: ModelConfig, weights: Path) -> None:
    """CheckpointError unless the weight file (its header only) holds exactly the tensors
    and shapes that `cfg` describes: a config edit never allocates a model of its size."""
    from plastic.models.shapes import expected_shapes

    try:
        with safe_open(str(weights), framework="pt") as handle:
            found = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: corrupt weights file ({exc})") from None
    want = expected_shapes(cfg)
    if want is None:  # the architecture's shapes could not be derived: checked on load
        return
    for name in sorted(set(want) | set(found)):
        if want.get(name) != found.get(name):
            raise CheckpointError(
                f"{weights.parent}: config.json and the weights do not fit: tensor {name} is "
                f"{_shape(found.get(name))} in the file, {_shape(want.get(name))} by the config"
            )


def _shape(shape: tuple[int, ...] | None) -> str:
    return "absent" if shape is None else "[" + ", ".join(map(str, shape)) + "]"


def resolve_model(spec: str | Path | None) -> SpikingLM:
    """The model for `--model`: the shipped one (None/'default'), a preset name, or a directory."""
    if spec is None or str(spec) == "default":
        if not (DEFAULT_MODEL_DIR / CONFIG_FILE).is_file():
            raise CheckpointError("the shipped default model is missing from this installation")
        return load_model(DEFAULT_MODEL_DIR)
    path = Path(spec)
    if path.is_dir():
        return load_model(path)
    if str(spec) in PRESETS:
        if (DEFAULT_MODEL_DIR / CONFIG_FILE).is_file():
            shipped = read_config(DEFAULT_MODEL_DIR)["model"].get("name")
            if shipped == str(spec):
                return load_model(DEFAULT_MODEL_DIR)
        raise CheckpointError(
            f"no trained weights are shipped for preset {spec!r}; train them with "
            f"`plastic train --preset {spec} --out DIR` and pass --model DIR"
        )
    raise CheckpointError(f"--model {spec}: no such directory or preset ({', '.join(PRESETS)})")
