#!/usr/bin/env python3
"""Ingestion throughput of a LlamaIndex pipeline, for comparison with `rag bench`.

Runs `IngestionPipeline([SentenceSplitter, OnnxMiniLMEmbedding])` over
`SimpleDirectoryReader(corpus, recursive=True)` into an in-memory `VectorStoreIndex`
(SimpleVectorStore + docstore), then embeds exactly the same node texts again with the same
ONNX Runtime session and batch size and nothing else. Both sides use the project's own model
files (scripts/fetch-models.sh): the int8 all-MiniLM-L6-v2 `model.onnx` and its
`tokenizer.json`.

Nothing is downloaded: hub/offline variables are set, NLTK and tiktoken are pointed at the
caches that llama-index-core ships, token counting uses the model's own tokenizer, and every
attempt to open a network connection is recorded and makes the run fail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import sys
import time
from pathlib import Path

# --- offline, before any third-party import ----------------------------------------------------
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_var] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

NETWORK_ATTEMPTS: list[str] = []


def _refuse(what: str, target: object) -> None:
    NETWORK_ATTEMPTS.append(f"{what} {target!r}")
    raise OSError(f"network access refused by benches/llamaindex/ingest.py: {what} {target!r}")


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family == socket.AF_UNIX:
        return _real_connect(self, address)
    _refuse("connect", address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if self.family == socket.AF_UNIX:
        return _real_connect_ex(self, address)
    _refuse("connect", address)
    return 1


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = lambda host, *a, **k: _refuse("getaddrinfo", host)  # type: ignore[assignment]
socket.create_connection = lambda address, *a, **k: _refuse("create_connection", address)  # type: ignore[assignment]

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

import llama_index.core  # noqa: E402
from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.bridge.pydantic import PrivateAttr  # noqa: E402
from llama_index.core.ingestion import IngestionPipeline  # noqa: E402
from llama_index.core.node_parser import SentenceSplitter  # noqa: E402
from llama_index.core.schema import MetadataMode, TransformComponent  # noqa: E402
from llama_index.core.utils import globals_helper, set_global_tokenizer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = REPO / "models" / "embed" / "all-MiniLM-L6-v2"
# The extensions `rag ingest` reads (ingest/src/extract/mod.rs).
EXTENSIONS = [".txt", ".text", ".md", ".markdown", ".html", ".htm", ".xhtml", ".pdf"]

_LI_STATIC = Path(llama_index.core.__file__).resolve().parent / "_static"


def use_bundled_nlp_caches() -> None:
    """Points NLTK and tiktoken at llama-index-core's bundled caches and loads them now.

    SentenceSplitter's default sentence splitter is NLTK punkt (`globals_helper.punkt_tokenizer`,
    which also loads the English stopwords); llama-index-core downloads them unless found.
    """
    nltk_dir = _LI_STATIC / "nltk_cache"
    for needed in ("tokenizers/punkt_tab", "corpora/stopwords"):
        if not (nltk_dir / needed).exists():
            sys.exit(f"llama-index-core's bundled NLTK data lacks {nltk_dir / needed}")
    os.environ["NLTK_DATA"] = str(nltk_dir)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(_LI_STATIC / "tiktoken_cache"))
    globals_helper.punkt_tokenizer  # noqa: B018 -- loads punkt + stopwords (would download if missing)


class OnnxMiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 on ONNX Runtime: mean pooling over the attention mask, L2-normalised.

    Tokenisation as fastembed does it for this model: pad to the longest input of the batch,
    truncate at `max_length` tokens (the shipped tokenizer.json says fixed 128 for both).
    """

    _session: ort.InferenceSession = PrivateAttr()
    _tokenizer: Tokenizer = PrivateAttr()
    _input_names: list[str] = PrivateAttr()

    def __init__(self, model_dir: Path, threads: int, max_length: int, **kwargs):
        super().__init__(model_name=Path(model_dir).name, **kwargs)
        tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        pad_id = tok.token_to_id("[PAD]")
        if pad_id is None:
            pad_id = 0
        tok.no_padding()
        tok.no_truncation()
        tok.enable_truncation(max_length=max_length)
        tok.enable_padding(pad_id=pad_id, pad_token="[PAD]")  # length=None: longest in batch
        self._tokenizer = tok

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # As services/embed does: spinning threads starve whatever shares the cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(Path(model_dir) / "model.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        self._input_names = [i.name for i in self._session.get_inputs()]

    @classmethod
    def class_name(cls) -> str:
        return "OnnxMiniLMEmbedding"

    def embed(self, texts: list[str]) -> np.ndarray:
        """Raw path: tokenise, run the model, pool, normalise; (len(texts), 384) float32."""
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)


class MetadataOutOfEmbedding(TransformComponent):
    """--no-metadata: keeps metadata on the nodes but out of splitting budgets and embedded text."""

    def __call__(self, nodes, **kwargs):
        for node in nodes:
            keys = list(node.metadata.keys())
            node.excluded_embed_metadata_keys = keys
            node.excluded_llm_metadata_keys = list(keys)
        return nodes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, type=Path, help="folder to ingest (recursive)")
    ap.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR,
                    help="folder with model.onnx and tokenizer.json (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads (2)")
    ap.add_argument("--batch", type=int, default=32, help="embed_batch_size (32)")
    ap.add_argument("--max-length", type=int, default=256, help="truncation in tokens (256)")
    ap.add_argument("--chunk-size", type=int, default=200, help="SentenceSplitter chunk_size (200)")
    ap.add_argument("--chunk-overlap", type=int, default=32, help="SentenceSplitter overlap (32)")
    ap.add_argument("--html-body", action="store_true",
                    help="read .html/.htm/.xhtml with HTMLTagReader(tag='body') instead of "
                         "SimpleDirectoryReader's default (the raw file, tags included)")
    ap.add_argument("--no-metadata", action="store_true",
                    help="keep document metadata (file_path, page_label) out of the chunk "
                         "budget and the embedded text, as `rag ingest` does")
    ap.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    ap.add_argument("--dump", type=Path,
                    help="write the embedded node texts to this JSON-lines file (for checking)")
    args = ap.parse_args()

    for name in ("model.onnx", "tokenizer.json"):
        if not (args.model_dir / name).is_file():
            sys.exit(f"{args.model_dir / name} is missing: run scripts/fetch-models.sh")
    if not args.corpus.is_dir():
        sys.exit(f"{args.corpus} is not a folder")

    # --- setup, not timed (as `rag bench` loads its model and chunker before timing) ----------
    use_bundled_nlp_caches()
    # SimpleDirectoryReader imports its file readers (pypdf, pandas, bs4) on first use: a
    # one-off start-up cost that would otherwise land in a small corpus's read time.
    import llama_index.readers.file  # noqa: F401
    count_tok = Tokenizer.from_file(str(args.model_dir / "tokenizer.json"))
    count_tok.no_padding()
    count_tok.no_truncation()

    def count_tokens(text: str) -> list[int]:
        # Like ingest/src/chunk.rs: the budget excludes [CLS]/[SEP].
        return count_tok.encode(text, add_special_tokens=False).ids

    set_global_tokenizer(count_tokens)  # nothing falls back to tiktoken
    Settings.tokenizer = count_tokens

    t = time.perf_counter()
    embed_model = OnnxMiniLMEmbedding(
        args.model_dir, threads=args.threads, max_length=args.max_length,
        embed_batch_size=args.batch,
    )
    model_load_s = time.perf_counter() - t
    Settings.embed_model = embed_model  # never the default (remote) embedding
    # Warm the session up so the pipeline run is not charged for it (the raw run warms up too).
    embed_model.embed(["The quick brown fox jumps over the lazy dog. " * 20] * args.batch)

    file_extractor = {}
    if args.html_body:
        from llama_index.readers.file import HTMLTagReader

        html = HTMLTagReader(tag="body")
        file_extractor = {ext: html for ext in (".html", ".htm", ".xhtml")}

    splitter = SentenceSplitter(
        chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap, tokenizer=count_tokens,
    )
    transformations = [splitter, embed_model]
    if args.no_metadata:
        transformations.insert(0, MetadataOutOfEmbedding())

    # --- the pipeline: read + split + embed + store --------------------------------------------
    started = time.perf_counter()
    reader = SimpleDirectoryReader(
        str(args.corpus), recursive=True, required_exts=EXTENSIONS,
        file_extractor=file_extractor or None, raise_on_error=False,
    )
    files = list(reader.input_files)
    documents = reader.load_data()
    read_done = time.perf_counter()
    pipeline = IngestionPipeline(transformations=transformations)
    nodes = pipeline.run(documents=documents)
    transform_done = time.perf_counter()
    index = VectorStoreIndex(nodes, embed_model=embed_model)  # nodes have vectors: not re-embedded
    pipeline_s = time.perf_counter() - started
    stages = {
        "read_s": read_done - started,
        "split_embed_s": transform_done - read_done,
        "store_s": started + pipeline_s - transform_done,
    }

    # VectorStoreIndex skips nodes without content (it prints "Some nodes are missing
    # content"); the comparison below uses the nodes it stored.
    nodes = [n for n in nodes if n.get_content(metadata_mode=MetadataMode.EMBED) != ""]
    stored = len(index.vector_store.data.embedding_dict)
    if stored != len(nodes):
        sys.exit(f"stored {stored} vectors for {len(nodes)} nodes with content")
    if not nodes:
        sys.exit("the corpus produced no nodes")

    # --- raw: the same texts, same session, same batch, nothing else ---------------------------
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    embed_model.embed(texts[: args.batch])  # warm-up batch
    started = time.perf_counter()
    raw_vectors = [embed_model.embed(texts[i : i + args.batch])
                   for i in range(0, len(texts), args.batch)]
    raw_s = time.perf_counter() - started
    raw = np.concatenate(raw_vectors)
    piped = np.array([n.embedding for n in nodes], dtype=np.float32)
    max_diff = float(np.abs(raw - piped).max())

    # Tokens each node fed to the model (after truncation, without padding).
    token_counts = [sum(e.attention_mask) for e in embed_model._tokenizer.encode_batch(texts)]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    n = len(nodes)
    pipeline_rate = n / pipeline_s
    raw_rate = n / raw_s
    corpus_bytes = sum(Path(f).stat().st_size for f in files)
    result = {
        "corpus": str(args.corpus),
        "files": len(files),
        "corpus_mb": corpus_bytes / 1e6,
        "documents": len(documents),
        "nodes": n,
        "model_load_s": model_load_s,
        "pipeline_s": pipeline_s,
        "pipeline_chunks_per_s": pipeline_rate,
        "pipeline_stages": stages,
        "raw_s": raw_s,
        "raw_chunks_per_s": raw_rate,
        "pipeline_over_raw": pipeline_rate / raw_rate,
        "max_abs_diff_pipeline_vs_raw": max_diff,
        "embedded_tokens_mean": float(np.mean(token_counts)),
        "embedded_tokens_max": int(np.max(token_counts)),
        "peak_rss_mb": peak_rss_mb,
        "network_attempts": NETWORK_ATTEMPTS,
        "settings": {
            "threads": args.threads, "batch": args.batch, "max_length": args.max_length,
            "chunk_size": args.chunk_size, "chunk_overlap": args.chunk_overlap,
            "html_body": args.html_body, "no_metadata": args.no_metadata,
            "model_dir": str(args.model_dir),
        },
        "versions": {
            "python": platform.python_version(),
            "llama_index_core": llama_index.core.__version__,
            "onnxruntime": ort.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
        "machine": {"cores": os.cpu_count(), "cpu": _cpu_name()},
    }

    print("# LlamaIndex ingest bench")
    print()
    print(f"corpus: {args.corpus}")
    print(f"machine: {os.cpu_count()} cores, {_cpu_name()}")
    v = result["versions"]
    print(f"python {v['python']}, llama-index-core {v['llama_index_core']}, "
          f"onnxruntime {v['onnxruntime']}, tokenizers {v['tokenizers']}, numpy {v['numpy']}")
    print()
    print(f"## Ingest ({len(files)} files, {corpus_bytes / 1e6:.1f} MB, "
          f"{len(documents)} documents, {n} nodes)")
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| embedding model load | {model_load_s:.2f} s |")
    print(f"| raw embedding (same node texts, batch {args.batch}) | {raw_rate:.1f} chunks/s "
          f"({raw_s:.2f} s) |")
    print(f"| LlamaIndex pipeline (read + split + embed + store) | {pipeline_rate:.1f} chunks/s "
          f"({pipeline_s:.2f} s) |")
    print(f"| pipeline / raw | {100 * pipeline_rate / raw_rate:.1f} % |")
    print(f"| pipeline stages: read / split + embed / store | {stages['read_s']:.2f} s / "
          f"{stages['split_embed_s']:.2f} s / {stages['store_s']:.3f} s |")
    print(f"| embedded tokens per node (incl. [CLS]/[SEP]) | mean {np.mean(token_counts):.1f}, "
          f"max {np.max(token_counts)} |")
    print(f"| max abs diff, pipeline vs raw vectors | {max_diff:.2e} |")
    print(f"| peak RSS of this process | {peak_rss_mb:.0f} MB |")
    print()
    if NETWORK_ATTEMPTS:
        print("network access was attempted (and refused):", *NETWORK_ATTEMPTS, sep="\n  ")
    else:
        print("network: no connection attempted")

    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.dump:
        with args.dump.open("w") as out:
            for node, text, tokens in zip(nodes, texts, token_counts):
                row = {"file_path": node.metadata.get("file_path"), "tokens": tokens, "text": text}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 3 if NETWORK_ATTEMPTS else 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
