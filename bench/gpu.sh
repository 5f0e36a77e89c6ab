#!/usr/bin/env bash
# GPU training benchmark of the attention-fusion model (issue 10): ViT-B/16 + BERT-base-sized
# encoders, random weights, bf16, batch 128 and 256 eager and 256 with torch.compile.
# Writes nvidia-smi.txt, log.txt, one JSON per run and summary.md under ${OUT:-bench_out};
# meant to finish in about 5 minutes on an H200 (each run is capped; worst case 7.5 minutes).
#
# Run from the repository root, on the device machine through the device tool:
#     run(command="bash bench/gpu.sh", timeout_s=600)
#
# Python: .venv/bin/python if it imports torch, else the system python3 if it does (the H200
# image's python3 has torch, timm, transformers, lightning and nvidia-ml-py, with no network),
# else a fresh .venv with pip install (needs the internet). The project's .venv (about 7 GB)
# cannot travel with the device tool's `carry` option (64 MiB in all), so on the H200 the
# system python3 runs it, with Plait from src/ (no install). That image has no pydantic, so
# bench/gpu.py trains with its plain bf16 autocast loop instead of Plait's Lightning system,
# unless wheels for pydantic are carried in .whl/ (see docs/benchmarks.md); they are then
# installed below into /tmp/site.
#
# GPU_BENCH_SMOKE=1 bash bench/gpu.sh   runs the eager runs with --smoke (tiny, CPU) to check the script.
set -euo pipefail

cd "$(dirname "$0")/.."
export OUT="${OUT:-bench_out}"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
LOG="$OUT/log.txt"
: >"$LOG"

has_torch() { "$1" -c "import torch" >/dev/null 2>&1; }

if [[ -x .venv/bin/python ]] && has_torch .venv/bin/python; then
    PY=.venv/bin/python
elif command -v python3 >/dev/null && has_torch python3; then
    PY=python3
else
    python3 -m venv .venv
    .venv/bin/pip install torch==2.14.1 torchvision==0.29.1 -e '.[pretrained]'
    PY=.venv/bin/python
fi

if compgen -G ".whl/*.whl" >/dev/null; then  # optional carried wheels (pydantic for the Lightning loop)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "python: $PY ($("$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)'))"
} | tee -a "$LOG"

SMOKE=()
if [[ "${GPU_BENCH_SMOKE:-0}" == 1 ]]; then
    SMOKE=(--smoke)
elif command -v nvidia-smi >/dev/null; then
    nvidia-smi | tee "$OUT/nvidia-smi.txt" | tee -a "$LOG"
fi

failed=()
run() {  # run NAME TIMEOUT_S ARGS...: one gpu.py process, capped, its failure recorded
    local name=$1 limit=$2
    shift 2
    echo "--- $name: bench/gpu.py $* ${SMOKE[*]}" | tee -a "$LOG"
    if ! timeout "$limit" "$PY" bench/gpu.py "$@" "${SMOKE[@]}" --json "$name.json" 2>&1 | tee -a "$LOG"; then
        echo "--- $name FAILED (or ran past ${limit} s)" | tee -a "$LOG"
        failed+=("$name")
    fi
}

run bs128 120 --batch-size 128 --warmup 10 --steps 30
run bs256 120 --batch-size 256 --warmup 10 --steps 30
if ((${#SMOKE[@]})); then  # inductor on a small CPU takes minutes: bench/gpu.py --smoke --compile alone
    echo "--- bs256_compile skipped in smoke mode" | tee -a "$LOG"
else
    run bs256_compile 210 --batch-size 256 --warmup 15 --steps 30 --compile
fi

"$PY" - <<'PY' | tee "$OUT/summary.md" | tee -a "$LOG"
import json, os
from pathlib import Path

rows = [json.loads(p.read_text()) for p in sorted(Path(os.environ["OUT"]).glob("bs*.json"))]
print("| batch | compile | loop | samples/s | ms/step | TFLOP/step | TFLOP/s | MFU | peak GiB | GPU util % |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    util = r["gpu"].get("util_mean_pct")
    mem = r["peak_memory_allocated_gib"]
    print(
        f"| {r['batch_size']} | {r['compile']} | {r['loop']} | {r['samples_per_s']:.1f} | {r['step_ms']:.1f} "
        f"| {r['flops_per_step'] / 1e12:.3f} | {r['achieved_tflops']:.1f} | {100 * r['mfu']:.1f} % "
        f"| {'n/a' if mem is None else f'{mem:.1f}'} | {'n/a' if util is None else f'{util:.0f}'} |"
    )
PY

if ((${#failed[@]})); then
    echo "failed runs: ${failed[*]}" | tee -a "$LOG"
    exit 1
fi
