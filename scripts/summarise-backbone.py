"""Markdown tables of what `scripts/measure-backbone.sh` wrote: the figures a backbone ships
with (model card, docs/results.md, the closing note).

Usage: python scripts/summarise-backbone.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from plastic_benchmarks.adapt import to_markdown


def _eval_table(out: Path) -> str:
    rows = ["| text | bits/byte | sparsity | bytes |", "| --- | ---: | ---: | ---: |"]
    for path in sorted(out.glob("eval-*.json")):
        r = json.loads(path.read_text())
        name = path.stem.removeprefix("eval-")
        rows.append(f"| {name} | {r['bits_per_byte']:.4f} | {r['sparsity']:.1%} | {r['bytes']:,} |")
    return "\n".join(rows)


def _chat(out: Path) -> str:
    c = json.loads((out / "chat.json").read_text())
    near, far = c["positions"]
    turns = json.loads((out / "chat-learn-turns.json").read_text())["turns"]
    return "\n".join(
        [
            f"- bench chat: {near['tokens_per_s']:.0f} / {far['tokens_per_s']:.0f} tokens/s at "
            f"positions {near['position']} / {far['position']} (ratio {c['ratio']:.2f}); "
            f"ratio to the bare arithmetic {c['ratio_to_bare']:.2f}; "
            f"peak RSS {max(p['rss_mb'] for p in c['positions']):.0f} MB",
            f"- bench chat --learn: whole turns, learning / plain {turns['ratio_best']:.3f} best, "
            f"{turns['ratio_median']:.3f} median "
            f"({turns['best_seconds']['chat']:.3f} / {turns['best_seconds']['learn']:.3f} s)",
        ]
    )


def _scores(path: Path) -> list[float]:
    scores = []
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        if obj.get("command") == "score" and obj.get("ok"):
            scores.append(round(obj["bits_per_byte"], 4))
    return scores


def _teach_probe(out: Path) -> str:
    tp = out / "teach-probe"
    learn, resume = _scores(tp / "learn.jsonl"), _scores(tp / "resume.jsonl")
    # teach.txt: FACT, CONTROL, then FACT after each of 6 turns, CONTROL, /undo, FACT
    fact0, control0, *after, control6, undone = learn
    return "\n".join(
        [
            f"- teach and probe: FACT {fact0} -> {', '.join(map(str, after))} "
            f"({after[-1] / fact0 - 1:+.1%}); CONTROL {control0} -> {control6} "
            f"({control6 - control0:+.4f})",
            f"- /undo: {undone} (turn 5: {after[-2]}); after /save + --adapter: {resume}",
        ]
    )


def main(out: Path) -> None:
    print("## plastic eval --max-bytes 100000\n")
    print(_eval_table(out))
    for name in ("adapt.json", "adapt-heldout.json"):
        print(f"\n## {name}\n")
        print(to_markdown(json.loads((out / name).read_text())))
    print("\n## chat\n")
    print(_chat(out))
    print(_teach_probe(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
