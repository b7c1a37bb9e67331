#!/usr/bin/env bash
# Packs what a GPU host needs to run the concurrency benchmark on llama.cpp's CUDA backend, for a
# host that has an NVIDIA driver, CUDA 13's cuBLAS (e.g. the `nvidia-cublas` wheel beside
# PyTorch) and no Rust, no network, and takes uploads of at most ~64 MiB at a time.
#
#   scripts/build-cuda.sh && scripts/gpu-pack.sh   -> .gpu/part-1 ... part-N, .gpu/SHA256SUMS
#
# Then on the GPU host, from a checkout of this repository, one call per part while the host stays
# up (each call uploads .gpu/part-K beside the checkout):
#   scripts/gpu-check.sh receive        (parts 1 .. N-1)
#   scripts/gpu-check.sh run            (with the last part: unpacks, checks, benchmarks)
#
# What travels: `rag` (stripped) and llama.cpp's shared libraries from dist/rag-cuda (cudart, but
# not cuBLAS: ~600 MB, taken from the host), the chat model and the embedding model, as one xz
# tar split into parts. Env: GPU_MODEL (default SmolLM2-135M: the larger chat models do not fit
# in a few uploads), PART_MB (default 41: a call carries at most 64 MiB, the checkout included, and 55 was refused).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
model="${GPU_MODEL:-models/llm/SmolLM2-135M-Instruct.Q4_1.gguf}"
part_mb="${PART_MB:-41}"
dist="dist/rag-cuda"
[ -x "$dist/rag" ] || { echo "gpu-pack: $dist/rag is missing: run scripts/build-cuda.sh first" >&2; exit 1; }
[ -f "$model" ] || { echo "gpu-pack: $model is missing: run scripts/fetch-models.sh" >&2; exit 1; }
embed="models/embed/all-MiniLM-L6-v2"
[ -f "$embed/model.onnx" ] || { echo "gpu-pack: $embed is missing: run scripts/fetch-models.sh" >&2; exit 1; }

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/rag-gpu/lib" "$stage/rag-gpu/models/llm" "$stage/rag-gpu/models/embed"
strip -o "$stage/rag-gpu/rag" "$dist/rag"
# llama.cpp and ggml (with the CUDA backend) and the CUDA runtime; cuBLAS comes from the host.
cp -P "$dist"/lib/libllama.so* "$dist"/lib/libggml*.so* "$dist"/lib/libcudart.so.* "$stage/rag-gpu/lib/"
strip --strip-unneeded "$stage"/rag-gpu/lib/*.so.*.* 2>/dev/null || true
cp "$model" "$stage/rag-gpu/models/llm/"
cp -r "$embed" "$stage/rag-gpu/models/embed/"
printf '%s\n' "$(basename "$model")" >"$stage/rag-gpu/MODEL"

rm -rf .gpu
mkdir -p .gpu
echo "gpu-pack: compressing (xz, a few minutes on 2 cores)"
tar -C "$stage" -cf - rag-gpu | xz -T0 -6 | split -b "${part_mb}m" -d -a 1 --numeric-suffixes=1 - .gpu/part-
(cd .gpu && sha256sum part-* >SHA256SUMS)
n=$(ls .gpu/part-* | wc -l)
echo "gpu-pack: $(du -sh .gpu | cut -f1) in $n parts:"
ls -l .gpu
echo
echo "On the GPU host (device tool), one call per part while the machine stays warm:"
for i in $(seq 1 "$n"); do
  verb=receive
  [ "$i" = "$n" ] && verb=run
  echo "  carry [\".gpu/part-$i\", \".gpu/SHA256SUMS\"]: bash scripts/gpu-check.sh $verb"
done
