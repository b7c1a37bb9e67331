#!/usr/bin/env bash
# Runs on a GPU host (see scripts/gpu-pack.sh): the concurrency benchmark with every layer of the
# chat model on the GPU, and the evidence that the GPU did the work (llama.cpp's device log,
# nvidia-smi before, during and after). Results go to $OUT (default ./gpu-out).
#
#   bash scripts/gpu-check.sh receive   keep the uploaded .gpu/part-K for the next call
#   bash scripts/gpu-check.sh run       the same, then unpack, check and benchmark
#
# Needs on the host: an NVIDIA driver for CUDA 13, cuBLAS 13 (the `nvidia-cublas` wheel or a CUDA
# toolkit) and, preferably, ONNX Runtime's shared library (the `onnxruntime` wheel); nothing else.
# Env: LEVELS (default 1,8,32,64,128), PARALLEL (default 128), STEP_TOKENS (default 2048),
# BENCH_SECONDS (default 420: the whole
# run stays under 8 minutes), CUBLAS_DIR and RAG_EMBEDDING__ONNXRUNTIME (where the host's cuBLAS
# and ONNX Runtime are, when the search below does not find them).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
verb="${1:-run}"
out="${OUT:-$root/gpu-out}"
parts="${GPU_PARTS_DIR:-/tmp/rag-gpu-parts}"
unpacked="${GPU_UNPACK_DIR:-/tmp/rag-gpu}"
mkdir -p "$out" "$parts"

# 1. Keep what this call uploaded (uploads of earlier calls stay in $parts while the host is up).
cp .gpu/part-* .gpu/SHA256SUMS "$parts/" 2>/dev/null || true
if [ "$verb" = receive ]; then
  echo "gpu-check: holding $(ls "$parts" | grep -c '^part-') part(s) in $parts"
  exit 0
fi
[ "$verb" = run ] || { echo "usage: gpu-check.sh receive|run" >&2; exit 64; }

# 2. All parts, unchanged, or a clear message saying which are missing.
[ -f "$parts/SHA256SUMS" ] || { echo "gpu-check: no .gpu/SHA256SUMS uploaded" >&2; exit 2; }
missing=$(cd "$parts" && awk '{print $2}' SHA256SUMS | while read -r f; do [ -f "$f" ] || echo "$f"; done)
if [ -n "$missing" ]; then
  echo "gpu-check: missing $(echo $missing) (uploaded by earlier calls on a host that was since given back?)" >&2
  exit 2
fi
(cd "$parts" && sha256sum --quiet -c SHA256SUMS)
rm -rf "$unpacked"
mkdir -p "$unpacked"
cat $(cd "$parts" && awk -v d="$parts" '{print d "/" $2}' SHA256SUMS) | xz -d | tar -C "$unpacked" -xf -
pack="$unpacked/rag-gpu"

# 3. cuBLAS and ONNX Runtime from the host's Python packages or CUDA toolkit.
find_lib() {
  local dirs
  dirs="$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true) /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu"
  for d in $dirs; do
    [ -d "$d" ] && find "$d" -name "$1" \( -type f -o -type l \) 2>/dev/null | head -1
  done | head -1
}
cublas="${CUBLAS_DIR:+$CUBLAS_DIR/libcublas.so.13}"
[ -n "$cublas" ] || cublas="$(find_lib 'libcublas.so.13')"
[ -n "$cublas" ] || { echo "gpu-check: no libcublas.so.13 on this host (install the nvidia-cublas wheel)" >&2; exit 3; }
lib_path="$pack/lib:$(dirname "$cublas")"
ort="${RAG_EMBEDDING__ONNXRUNTIME:-$(find_lib 'libonnxruntime.so*')}"
[ -n "$ort" ] || { echo "gpu-check: no ONNX Runtime library on this host (the onnxruntime wheel has one)" >&2; exit 3; }

{
  echo "# gpu-check $(date -u +%FT%TZ) on $(hostname)"
  echo "cuBLAS: $cublas"
  echo "ONNX Runtime: $ort"
  echo "model: $(cat "$pack/MODEL")"
} | tee "$out/summary.txt"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi >"$out/nvidia-smi-before.txt" 2>&1 || true
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,power.draw --format=csv -l 1 \
    >"$out/nvidia-smi-during.csv" 2>&1 &
  smi=$!
else
  echo "no nvidia-smi: this host has no NVIDIA driver; llama.cpp will run on the CPU" | tee -a "$out/summary.txt"
  smi=""
fi

# 4. The benchmark: every layer on the GPU, many answers together, flash attention on.
export LD_LIBRARY_PATH="$lib_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RAG_LLM__MODEL_FILE="$pack/models/llm/$(cat "$pack/MODEL")"
export RAG_EMBEDDING__MODEL_DIR="$pack/models/embed/all-MiniLM-L6-v2"
export RAG_EMBEDDING__ONNXRUNTIME="$ort"
export RAG_LLM__N_GPU_LAYERS=999 RAG_LLM__PARALLEL="${PARALLEL:-128}" RAG_LLM__QUEUE=256
export RAG_LLM__FLASH_ATTENTION=true RAG_LLM__CACHE_TYPE_V=q8_0
# Prompt tokens per decode step: the CPU default (128) made 64 prompts wait ~2 s for their
# first token on an H200; the GPU reads 2,048 in about the time of one decode step.
export RAG_LLM__STEP_TOKENS="${STEP_TOKENS:-2048}"
export RUST_LOG="info,llama-cpp-2=info"
status=0
timeout "${BENCH_SECONDS:-420}" "$pack/rag" bench --data-dir "$unpacked/data" --asks 2 --searches 20 \
  --max-tokens 64 --concurrency "${LEVELS:-1,8,32,64,128}" --decode-tokens 128 \
  >"$out/bench.md" 2>"$out/bench.log" || status=$?
[ -n "$smi" ] && kill "$smi" 2>/dev/null
command -v nvidia-smi >/dev/null && nvidia-smi >"$out/nvidia-smi-after.txt" 2>&1 || true

# 5. The evidence, in one place.
{
  echo "rag bench exit status: $status"
  echo "## llama.cpp devices and offload"
  sed 's/\x1b\[[0-9;]*m//g' "$out/bench.log" |
    grep -aE 'llama.cpp devices|offload|CUDA0|using device|ggml_cuda_init|no GPU here' | cut -c1-240 | sort -u | awk 'NR <= 20'
  if [ -s "$out/nvidia-smi-during.csv" ]; then
    echo "## GPU utilisation during the run (nvidia-smi, 1 s samples): max %, max MiB"
    awk -F', ' 'NR>1 {u=$2+0; m=$3+0; if (u>mu) mu=u; if (m>mm) mm=m} END {print mu " %, " mm " MiB"}' \
      "$out/nvidia-smi-during.csv"
  fi
  echo "## bench"
  cat "$out/bench.md"
} | tee -a "$out/summary.txt"
exit "$status"
