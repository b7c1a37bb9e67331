// Raw llama.cpp prompt reading and decoding, without rag: the limit the first token is measured
// against (BENCHMARKS.md, fifteenth session). Reads PROMPT_TOKENS tokens in pieces of UBATCH (the
// service's `llm.step_tokens`) into an empty KV cache (keys q8_0, as the service); four rounds,
// the first a warm-up. On two cores the first token is almost all prompt reading.
//
// Built against the llama.cpp that llama-cpp-sys-2 vendors, once per set of kernels:
//
//   src=$(ls -d ~/.cargo/registry/src/*/llama-cpp-sys-2-0.1.161)/llama.cpp
//   cmake -S $src -B /tmp/lc-avx2 -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
//     -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
//     -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_SERVER=OFF \
//     -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON   # the AVX2 baseline
//   # or: ... -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX512_VBMI=ON -DGGML_BMI2=ON
//   cmake --build /tmp/lc-avx2 --target llama -j2
//   g++ -O2 -fopenmp prompt-speed.cpp -I$src/include -I$src/ggml/include /tmp/lc-avx2/src/libllama.a \
//     $(find /tmp/lc-avx2/ggml -name '*.a' | sort -r) $(find /tmp/lc-avx2/ggml -name '*.a' | sort -r) \
//     -lpthread -ldl -o /tmp/lc-avx2/prompt-speed
//   /tmp/lc-avx2/prompt-speed models/llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf 128 2
#include "llama.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT_TOKENS THREADS [UBATCH]\n", argv[0]);
        return 2;
    }
    const int n_prompt = atoi(argv[2]);
    const int threads = atoi(argv[3]);
    const int ubatch = argc > 4 ? atoi(argv[4]) : 128;
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 2048;
    cp.n_batch = ubatch;
    cp.n_ubatch = ubatch;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.type_k = GGML_TYPE_Q8_0;
    llama_context * ctx = llama_init_from_model(model, cp);
    // Any valid token ids: the cost of reading a prompt does not depend on its words.
    std::vector<llama_token> tokens(n_prompt);
    for (int i = 0; i < n_prompt; i++) {
        tokens[i] = 1000 + (i * 37) % 20000;
    }
    for (int round = 0; round < 4; round++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        const double t0 = now();
        for (int at = 0; at < n_prompt; at += ubatch) {
            const int n = std::min(ubatch, n_prompt - at);
            if (llama_decode(ctx, llama_batch_get_one(tokens.data() + at, n)) != 0) {
                fprintf(stderr, "decode failed\n");
                return 1;
            }
        }
        const double t1 = now();
        printf("round %d: prompt %d tokens in %.0f ms, %.1f tok/s%s\n", round, n_prompt, (t1 - t0) * 1000,
               n_prompt / (t1 - t0), round == 0 ? " (warm-up)" : "");
    }
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
