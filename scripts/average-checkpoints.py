"""Uniform average of the weights of several checkpoints of one training run (the tail of
a cosine schedule), saved as a new checkpoint with its own content hash.

Averaging the last checkpoints of a run can score better than its last one (Izmailov et
al. 2018, "Averaging Weights Leads to Wider Optima and Better Generalization"); whether it
does here is measured on validation text before anything ships.

Usage: python scripts/average-checkpoints.py OUT CKPT [CKPT ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from plastic.models.checkpoint import load_model, read_config, save_model


def average(dirs: list[Path]) -> tuple[torch.nn.Module, dict]:
    """The first checkpoint's model with every floating tensor replaced by the mean over
    `dirs`; the others must have the same config and equal non-floating tensors."""
    models = [load_model(d) for d in dirs]
    first = models[0]
    for d, m in zip(dirs[1:], models[1:], strict=True):
        if m.config.to_dict() != first.config.to_dict():
            raise SystemExit(f"{d}: another model config than {dirs[0]}")
    sources = [  # the hashes load_model verified
        {"content_hash": m.content_hash, "step": read_config(d).get("meta", {}).get("step")}
        for d, m in zip(dirs, models, strict=True)
    ]
    states = [m.state_dict() for m in models]
    merged = {}
    for name, value in states[0].items():
        if value.is_floating_point():
            merged[name] = torch.stack([s[name].double() for s in states]).mean(0).to(value.dtype)
        elif any(not torch.equal(s[name], value) for s in states[1:]):
            raise SystemExit(f"{name}: a non-floating tensor that differs between checkpoints")
        else:
            merged[name] = value
    first.load_state_dict(merged)
    meta = dict(read_config(dirs[-1]).get("meta", {}))
    meta["averaged_from"] = sources
    meta.pop("valid_bpb", None)  # measured on the average, by whoever ships it
    return first, meta


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    out, dirs = Path(argv[1]), [Path(a) for a in argv[2:]]
    model, meta = average(dirs)
    digest = save_model(model, out, meta)
    print(f"{out}: the average of {len(dirs)} checkpoints, content hash {digest}")


if __name__ == "__main__":
    main(sys.argv)
