"""Raise the ceiling on a checkpoint's token-mixing decays without changing what it computes
(`plastic.models.grow.raise_decay_ceiling`), saved as a new checkpoint that records where it
came from, so that training can lengthen the model's memory (`plastic train --decay-max`).

Usage: python scripts/raise-decay-ceiling.py IN OUT --decay-max 0.999
"""

from __future__ import annotations

import argparse
from pathlib import Path

from plastic.models.checkpoint import load_model, read_config, save_model
from plastic.models.grow import raise_decay_ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--decay-max", type=float, required=True)
    args = parser.parse_args()
    model = load_model(args.src)
    grown = raise_decay_ceiling(model, args.decay_max)
    source = {"content_hash": model.content_hash, "decay_max": model.config.decay_max}
    meta = {
        "decay_ceiling_raised_from": source,
        "source_meta": read_config(args.src).get("meta", {}),
    }
    digest = save_model(grown, args.out, meta)
    print(
        f"{args.out}: decay_max {model.config.decay_max} -> {args.decay_max}, content hash {digest}"
    )


if __name__ == "__main__":
    main()
