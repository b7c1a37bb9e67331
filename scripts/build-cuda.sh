#!/usr/bin/env bash
# Builds `rag` with llama.cpp's CUDA backend (feature `cuda`), on a machine without a GPU or a
# system CUDA toolkit: the toolkit comes from NVIDIA's PyPI wheels (CUDA 13.x, pinned by sha256 in
# scripts/cuda-requirements.txt). Too slow for CI (ggml-cuda alone is ~25 min on 2 cores): run it
# by hand; BENCHMARKS.md records the last result.
#
#   scripts/build-cuda.sh            -> dist/rag-cuda/{rag, lib/*.so, run}
#
# Env: CUDA_ARCHITECTURES (default 90: H100/H200), CUDA_HOME_DIR (where the toolkit tree goes,
# default ~/.cache/rag/cuda-13), PROFILE (release, or dev to share a debug build's dependencies).
#
# The result runs on a host with an NVIDIA driver for CUDA 13 and no toolkit: `dist/rag-cuda/run`
# sets LD_LIBRARY_PATH to its lib/ (llama.cpp, ggml, ggml-cuda, cudart, cublas). Without a GPU or
# driver it starts all the same and generates on the CPU (the feature builds ggml-cuda without
# VMM, so nothing links the driver library; a warning says so when llm.n_gpu_layers > 0).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
arch="${CUDA_ARCHITECTURES:-90}"
tree="${CUDA_HOME_DIR:-$HOME/.cache/rag/cuda-13}"
profile="${PROFILE:-release}"
target="${CARGO_TARGET_DIR:-$root/target}"

# 1. The toolkit: nvcc (and cicc from nvvm), the runtime, cuBLAS and CCCL headers, from pinned
#    wheels.
site="$tree/site"
if [ ! -x "$site/nvidia/cu13/bin/nvcc" ] || [ ! -x "$site/nvidia/cu13/nvvm/bin/cicc" ]; then
  echo "cuda: installing the toolkit wheels into $site (about 630 MB)"
  python3 -m pip install --quiet --no-deps --require-hashes --only-binary=:all: --upgrade \
    --target "$site" -r "$root/scripts/cuda-requirements.txt"
fi
cu="$site/nvidia/cu13"

# 2. A CUDA_PATH-shaped tree of links that CMake's FindCUDAToolkit accepts: nvcc must sit beside
#    nvcc.profile, the libraries in lib64 (and lib) with their unversioned names.
home="$tree/home"
rm -rf "$home"
mkdir -p "$home/bin" "$home/lib64"
for f in "$cu"/bin/*; do ln -s "$f" "$home/bin/"; done
ln -s "$cu/nvvm" "$home/nvvm"
ln -s "$cu/include" "$home/include"
for f in "$cu"/lib/*; do ln -s "$f" "$home/lib64/"; done
for lib in "$home"/lib64/lib*.so.*; do
  base="${lib%%.so.*}.so"
  [ -e "$base" ] || ln -s "$(readlink "$lib")" "$base"
done
# The wheel's nvcc.profile links from $TOP/lib.
ln -s lib64 "$home/lib"

# 3. Build. llama.cpp as shared libraries: static cuBLAS is not on PyPI.
export CUDA_PATH="$home" CUDAToolkit_ROOT="$home" CUDA_LIBRARY_PATH="$home/lib64"
export PATH="$home/bin:$PATH"
export CMAKE_CUDA_ARCHITECTURES="$arch" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
export LLAMA_BUILD_SHARED_LIBS=1
export LIBRARY_PATH="$home/lib64${LIBRARY_PATH:+:$LIBRARY_PATH}"
started=$(date +%s)
cargo build --locked --profile "$profile" --bin rag --features cuda
echo "cuda: built in $(( $(date +%s) - started )) s"

# 4. What travels: the binary, llama.cpp's and CUDA's shared libraries, a launcher.
out_dir="$target/$([ "$profile" = dev ] && echo debug || echo "$profile")"
dist="$root/dist/rag-cuda"
rm -rf "$dist"
mkdir -p "$dist/lib"
cp "$out_dir/rag" "$dist/"
find "$target/$([ "$profile" = dev ] && echo debug || echo "$profile")/build" -path '*llama-cpp-sys-2*' \
  \( -name 'libllama*.so*' -o -name 'libggml*.so*' \) -exec cp -P {} "$dist/lib/" \;
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13; do
  cp -L "$home/lib64/$lib" "$dist/lib/"
done
cat > "$dist/run" <<'SH'
#!/bin/sh
# rag with llama.cpp's CUDA backend; the libraries it needs are in lib/ beside this file.
here="$(cd "$(dirname "$0")" && pwd)"
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/rag" "$@"
SH
chmod +x "$dist/run"
echo "cuda: $dist ($(du -sh "$dist" | cut -f1)); missing libraries, if any:"
LD_LIBRARY_PATH="$dist/lib" ldd "$dist/rag" | grep 'not found' || echo "  none"
