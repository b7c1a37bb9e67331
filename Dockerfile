# The rag binary (query service, ingestion worker and CLI in one).
# Models are not baked in: mount the folder made by scripts/fetch-models.sh at /app/models.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libclang-dev protobuf-compiler python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Portable: llama.cpp's AVX2 baseline, not scripts/cpu-flags.sh's kernels for the build host's CPU
# (an image runs wherever it is pulled). Without llama.cpp's tinyBLAS kernels, as there (see
# scripts/cpu-flags.sh): an answer's tokens are computed the same whatever the batch.
ENV GGML_LLAMAFILE=OFF
RUN ./scripts/patch-qdrant-edge.sh && cargo build --release --locked --bin rag

# The query service with llama.cpp's CUDA backend (compose profile `gpu`): the same script as by
# hand, scripts/build-cuda.sh (CUDA 13 from pinned PyPI wheels), then its dist/ folder.
FROM build AS build-gpu
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip \
    && rm -rf /var/lib/apt/lists/*
RUN ./scripts/build-cuda.sh

FROM debian:bookworm-slim AS gpu
RUN apt-get update && apt-get install -y --no-install-recommends poppler-utils libgomp1 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build-gpu /src/dist/rag-cuda /opt/rag
WORKDIR /app
RUN useradd --system --uid 10001 --home-dir /app rag && mkdir -p /data && chown rag /data
USER rag
ENV RAG_DATA_DIR=/data
ENTRYPOINT ["/opt/rag/run"]

# The default image (last stage): CPU only.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends poppler-utils libgomp1 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/rag /usr/local/bin/rag
WORKDIR /app
# The data directory (embedded store, the worker's manifests); compose mounts its volumes here.
ENV RAG_DATA_DIR=/data
ENTRYPOINT ["rag"]
