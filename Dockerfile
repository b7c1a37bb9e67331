# The rag binary (query service, ingestion worker and CLI in one).
# Models are not baked in: mount the folder made by scripts/fetch-models.sh at /app/models.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libclang-dev protobuf-compiler python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN ./scripts/patch-qdrant-edge.sh && cargo build --release --locked --bin rag

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends poppler-utils libgomp1 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/rag /usr/local/bin/rag
WORKDIR /app
# The data directory (embedded store, the worker's manifests); compose mounts its volumes here.
ENV RAG_DATA_DIR=/data
ENTRYPOINT ["rag"]
