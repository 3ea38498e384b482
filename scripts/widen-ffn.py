"""Widen every feed-forward population of a checkpoint by whole copies of its neurons
(`plastic.models.grow.widen_ffn`, Net2WiderNet), saved as a new checkpoint that records
where it came from, so that a trained model can keep training with more capacity.

Usage: python scripts/widen-ffn.py IN OUT [--factor 2] [--noise 0.03] [--seed 0] [--name N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from plastic.models.checkpoint import load_model, read_config, save_model
from plastic.models.grow import widen_ffn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--factor", type=int, default=2)
    parser.add_argument("--noise", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="the widened config's name (a preset's)")
    args = parser.parse_args()
    model = load_model(args.src)
    wide = widen_ffn(model, args.factor, noise=args.noise, seed=args.seed, name=args.name)
    meta = {
        "widened_from": {"content_hash": model.content_hash, "d_ff": model.config.d_ff},
        "widen": {"factor": args.factor, "noise": args.noise, "seed": args.seed},
        "source_meta": read_config(args.src).get("meta", {}),
    }
    digest = save_model(wide, args.out, meta)
    print(
        f"{args.out}: d_ff {model.config.d_ff} -> {wide.config.d_ff}, "
        f"{wide.num_parameters():,} parameters, content hash {digest}"
    )


if __name__ == "__main__":
    main()
