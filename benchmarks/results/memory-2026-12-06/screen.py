"""Held-out screen of the memory's settings (issue 13): 100 kB from offset 500,000 of each
shared stream, forgetting on the first 50 kB of Gutenberg valid, through the product's own
path (`plastic_benchmarks.adapt._adapter_run` on cached backbone passes).

Usage: python screen.py '{"gate_clip": 0.2}' '{"gate_clip": 1.0}' ...  (kind_params each)
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from plastic_benchmarks.adapt import _adapter_run

from plastic.models.checkpoint import resolve_model
from plastic.plasticity.config import memory_adapter_config
from plastic.plasticity.prequential import cached_pass

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
STREAMS = ("tinyshakespeare.txt", "python-3.11-docs.txt", "wikitext-2-raw/wiki.valid.raw")
CACHE = Path("/work/cache/adapt") if Path("/work/cache/adapt").is_dir() else None


def main() -> None:
    torch.set_num_threads(1)
    model = resolve_model(None)
    forget_data = (DATA / "gutenberg/gutenberg.valid.txt").read_bytes()[:50_000]
    forget, _ = cached_pass(model, forget_data, CACHE)
    frozen_forget = forget.frozen_bits().mean()
    passes = []
    for name in STREAMS:
        data = (DATA / name).read_bytes()[500_000:600_000]
        passes.append(cached_pass(model, data, CACHE)[0])
    for arg in sys.argv[1:] or ["{}"]:
        kind_params = json.loads(arg)
        config = memory_adapter_config(kind_params=kind_params)
        bits, forgets = [], []
        for bpass in passes:
            run = _adapter_run(model, config, bpass, forget)
            bits.append(float(run["bits"].mean()))
            forgets.append(float(run["forget_bits"].mean() - frozen_forget))
        row = " ".join(f"{b:.4f}" for b in bits)
        frow = " ".join(f"{f:+.4f}" for f in forgets)
        print(f"{arg}: {row} mean {np.mean(bits):.4f} | forgetting {frow}", flush=True)


if __name__ == "__main__":
    main()
