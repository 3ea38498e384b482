#!/usr/bin/env bash
# One GPU check of issue 18: prints one JSON line per figure on stdout (progress on stderr),
# and writes them all to benchmarks/results/gpu-check-<date>.jsonl. Meant to finish in under
# 8 minutes on one GPU (an H100 class card). Without a GPU it stops at once, exit 1.
#
#   1. nord-144m training tokens/s (bf16 autocast, gradient checkpointing) and peak memory
#   2. chat tokens/s on CUDA, without and with --learn (rule rstdp: the readout adapter,
#      whose rule runs on the CUDA kernels; the context memory has no CUDA path yet)
#   3. bench kernels on CUDA vs the CPU kernels, rstdp, N = 4096, 16384, 65536
#   4. CPU vs CUDA agreement: the CUDA kernel checks and the replay checks, on the GPU
#
# Usage: scripts/gpu-check.sh [PYTHON]   (default: python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-python}"
export PYTHONUNBUFFERED=1
unset NUMBA_ENABLE_CUDASIM  # the real GPU, never the simulator
out="benchmarks/results/gpu-check-$(date -u +%Y-%m-%d).jsonl"
mkdir -p benchmarks/results
: > "$out"

if ! "$PY" -c 'import sys, torch; from numba import cuda; sys.exit(0 if torch.cuda.is_available() and cuda.is_available() else 1)' 2>/dev/null; then
    rm -f "$out"
    echo '{"figure": "gpu", "error": "no CUDA GPU visible to torch and numba: nothing measured"}'
    exit 1
fi

emit() {  # read one JSON document on stdin, print the figure's line and append it to $out
    "$PY" -c 'import json, sys; print(json.dumps(eval(sys.argv[1], {"r": json.load(sys.stdin)}), allow_nan=False))' "$1" | tee -a "$out"
}
say() { echo "gpu-check: $*" >&2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

say "1/4 nord-144m training (bf16), batch 16 x 512"
timeout 240 "$PY" -m plastic bench train --preset nord-144m --device cuda --batch-size 16 \
    --seq-len 512 --warmup 2 --steps 5 --json \
    | emit '{"figure": "train_nord_144m", "device": r["device_name"], "parameters": r["parameters"], "tokens_per_s": r["tokens_per_s"], "peak_memory_gib": r["peak_memory_allocated_bytes"] / 2**30, "footprint_estimate_gib": r["footprint_estimate"]["total_bytes_estimate"] / 2**30, "batch": [16, 512], "dtype": r["dtype"], "grad_checkpointing": r["grad_checkpointing"]}'

say "2/4 chat tokens/s on CUDA, without and with --learn"
for learn in "" "--learn --rule rstdp"; do
    # shellcheck disable=SC2086  # $learn is two options or none
    timeout 120 "$PY" -m plastic chat --device cuda $learn --json --max-new-tokens 200 \
        --prompt "The zorblat of Quimby is teal and purple, and it hums at dawn." \
        | grep '"type": "turn"' | tail -1 \
        | emit '{"figure": "chat_tokens_per_s", "learn": '"$([ -n "$learn" ] && echo True || echo False)"', "tokens": r["tokens"], "tokens_per_s": r["tokens_per_s"]}'
done

say "3/4 bench kernels, rstdp, numba vs cuda"
for n in 4096 16384 65536; do
    steps=500; [ "$n" -eq 65536 ] && steps=100
    timeout 240 "$PY" -m plastic bench kernels --rules rstdp --backends numba,cuda --sizes "$n" \
        --probs 0.01 --steps "$steps" --repeats 1 --json > "$tmp/kernels.json"
    emit '[{"figure": "kernels_rstdp", "n": row["n"], "p": row["p"], "steps": row["steps"], "numba_msyn_s": row["numba_msyn_s"], "cuda_msyn_s": row["cuda_msyn_s"], "cuda_over_numba": row["cuda_over_numba"]} for row in r["rows"]][0]' < "$tmp/kernels.json"
done

say "4/4 CPU vs CUDA agreement (kernel checks and replay checks on the GPU)"
set +e
timeout 300 "$PY" -m pytest -q -p no:cacheprovider tests/kernels_numba/cuda_checks.py \
    tests/replay/cuda_replay_checks.py > "$tmp/agree.txt" 2>&1
code=$?
set -e
tail -1 "$tmp/agree.txt" | "$PY" -c 'import json, sys; print(json.dumps({"figure": "cpu_cuda_agreement", "tolerance": 1e-6, "passed": sys.argv[1] == "0", "summary": sys.stdin.read().strip()}))' "$code" | tee -a "$out"
say "done: $out"
exit "$code"
