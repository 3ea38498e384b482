#!/usr/bin/env bash
# Everything a backbone must be re-measured on before it ships (issue 17): the language
# model on four texts, the adaptation benchmark (all systems; the shared streams and their
# held-out segments), the chat's token cost and turn cost, and the teach-and-probe script.
# About 15 minutes on the 2-core dev machine with nothing else running.
#
# Usage: scripts/measure-backbone.sh MODEL_DIR OUT_DIR [DATA_DIR]
#   MODEL_DIR  a checkpoint directory (plastic/models/default for the shipped model)
#   OUT_DIR    where every result goes (eval-*.json, adapt*.json, chat*.json, teach-probe/)
#   DATA_DIR   the shared data (default: ../shared/data beside the repository)
# Run it inside the project's virtual environment (`plastic` on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
model="$(realpath "$1")"
out="$(realpath -m "$2")"
data="$(realpath "${3:-../shared/data}")"
mkdir -p "$out"
export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1

# ppmd needs the bench extra (pip install -e '.[bench]'); the default --systems leave it out
streams=("$data/tinyshakespeare.txt" "$data/python-3.11-docs.txt" "$data/wikitext-2-raw/wiki.valid.raw")
stream_args=()
for s in "${streams[@]}"; do stream_args+=(--stream "$s"); done
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

for f in "$data/gutenberg/gutenberg.test.txt" "${streams[@]}"; do
    log "eval $(basename "$f")"
    plastic eval --model "$model" --data "$f" --max-bytes 100000 --json \
        > "$out/eval-$(basename "$f").json"
done

log "bench adapt: all systems, 3 seeds, forgetting"
plastic bench adapt --model "$model" "${stream_args[@]}" --max-bytes 100000 --seeds 3 \
    --systems frozen,memory,stdp,sham,readout,ngram_mix,ppmd,bzip2,xz \
    --forget "$data/gutenberg/gutenberg.valid.txt" --cache "$out/adapt-cache" --json \
    > "$out/adapt.json"
log "bench adapt: held-out segments (--offset 500000)"
plastic bench adapt --model "$model" "${stream_args[@]}" --max-bytes 100000 \
    --offset 500000 --systems frozen,memory,ngram_mix,ppmd --cache "$out/adapt-cache" --json \
    > "$out/adapt-heldout.json"
rm -rf "$out/adapt-cache"

log "bench chat"
plastic bench chat --model "$model" --tokens 1000 --repeats 5 --json > "$out/chat.json"
log "bench chat --learn"
plastic bench chat --model "$model" --learn --repeats 5 --json > "$out/chat-learn-turns.json"

log "teach and probe"
probe="benchmarks/results/teach-probe-2026-12-06"
tp="$out/teach-probe"
mkdir -p "$tp"
cp "$probe/teach.txt" "$probe/resume.txt" "$tp/"
# resume.txt's /save writes to /tmp/tp-memory/adapter, which the second command reads back
plastic chat --model "$model" --learn --script "$tp/teach.txt" --json --seed 0 \
    --max-new-tokens 60 > "$tp/learn.jsonl"
plastic chat --model "$model" --adapter /tmp/tp-memory/adapter --script "$tp/resume.txt" \
    --json --seed 0 > "$tp/resume.jsonl"
log "done: $out"
