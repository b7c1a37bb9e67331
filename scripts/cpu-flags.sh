# Sourced by the build scripts: llama.cpp's x86 kernels for the instructions this machine's CPU
# has beyond the AVX2/FMA baseline that llama-cpp-sys-2 builds by default. Its build script
# passes every GGML_* variable to CMake. On this 2-core Xeon, AVX-512 with VNNI reads a prompt
# 1.4 times as fast (BENCHMARKS.md, fifteenth session): the first token comes that much sooner.
#
# The binary then needs those instructions, as llama.cpp's own default build (GGML_NATIVE) does:
# it is built on the machine that runs it. Set RAG_PORTABLE_BUILD=1 for a binary that runs on any
# AVX2 CPU (the Dockerfile's build does not source this file). AMX is left out on purpose: with
# llama.cpp's AMX kernels the default chat model crashed on this machine's first prompt.
if [ "${RAG_PORTABLE_BUILD:-0}" != 1 ] && [ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ]; then
  _rag_cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  _rag_has() { for f in "$@"; do case "$_rag_cpu_flags" in *" $f "*) ;; *) return 1 ;; esac; done; }
  if _rag_has avx512f avx512cd avx512vl avx512dq avx512bw; then
    export GGML_AVX512=ON
    if _rag_has avx512vbmi; then export GGML_AVX512_VBMI=ON; fi
    if _rag_has avx512_vnni; then export GGML_AVX512_VNNI=ON; fi
    if _rag_has avx512_bf16; then export GGML_AVX512_BF16=ON; fi
  fi
  if _rag_has bmi2; then export GGML_BMI2=ON; fi
  unset -f _rag_has
  unset _rag_cpu_flags
fi
# llama.cpp's tinyBLAS (llamafile) kernels take over a matrix product only from two rows up
# ("only enable sgemm for prompt processing"), summing in another order than the one-row path:
# the attention of an answer's one new token and of several of its tokens at once would differ,
# and a speculative step (the token and the draft's proposals) would not give the tokens one
# step at a time gives. Off, every row takes the same path whatever the batch.
export GGML_LLAMAFILE=OFF
# llama-cpp-sys-2's build script registers only the GGML_* variables set when it ran, so a
# target directory built without (or with other) flags would keep its llama.cpp: rebuild it once
# when they change.
_rag_target="${CARGO_TARGET_DIR:-target}"
_rag_ggml="$(env | { grep '^GGML_' || true; } | sort | tr '\n' ' ')"
if [ -d "$_rag_target" ] && [ "$(cat "$_rag_target/.ggml-flags" 2>/dev/null)" != "$_rag_ggml" ]; then
  echo "llama.cpp is rebuilt for this CPU's flags: ${_rag_ggml:-none}" >&2
  cargo clean --quiet -p llama-cpp-sys-2
fi
mkdir -p "$_rag_target"
printf '%s' "$_rag_ggml" >"$_rag_target/.ggml-flags"
unset _rag_target _rag_ggml
true
