"""Write adv.txt, the adversarial chat script of README.md (run from the repository root):

python benchmarks/results/teach-probe-2026-11-23/make_adversarial.py adv.txt
plastic chat --learn --script adv.txt --json --seed 0 --max-new-tokens 40 > adversarial.jsonl
"""

import sys

import numpy as np

from plastic.plasticity.probe import probe_text

probe = " ".join(probe_text().split())  # the drift guard's probe paragraph, on one line
noise = np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
noise = noise.replace(b"\n", b" ").replace(b"\r", b" ")
with open("../shared/data/tinyshakespeare.txt", "rb") as handle:
    paste = handle.read(1_000_000).replace(b"\r", b" ").replace(b"\n", b" ")
score = b"/score " + probe.encode() + b"\n"
lines = [score, b"a" * 20_000 + b"\n", score, noise + b"\n", score, paste + b"\n", score]
lines += [b"/good\n"] * 1000 + [score, b"/stats\n"]
with open(sys.argv[1], "wb") as out:
    out.writelines(lines)
