#!/usr/bin/env python3
"""Retrieval recall of the LlamaIndex peer pipeline on a `rag eval` question set.

Takes the nodes `benches/llamaindex/ingest.py --dump FILE` wrote (each node's embedded text and
file path: SentenceSplitter chunks, with LlamaIndex's default `file_path: ...` metadata line in
the embedded text unless ingest.py ran with --no-metadata), embeds them and the questions with the
same ONNX model and the same pooling as ingest.py (mean pooling, L2 normalisation, truncation at
256 tokens), ranks nodes by cosine similarity (what a VectorStoreIndex over SimpleVectorStore
does), and reports recall@1, recall@5 and MRR@10 as `rag eval` defines them: the rank of the first
of the top 10 nodes whose file is one of the question's sources. Out-of-corpus questions
(`"sources": []`) are skipped.

Run in the venv of benches/llamaindex/README.md:
  python benches/llamaindex/ingest.py --corpus C --dump /tmp/nodes.jsonl
  python benches/eval/llamaindex-recall.py --nodes /tmp/nodes.jsonl --corpus C --questions SET
"""
import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def embedder(model_dir, threads, max_length):
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    pad_id = tok.token_to_id("[PAD]") or 0
    tok.no_padding()
    tok.no_truncation()
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=pad_id, pad_token="[PAD]")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(model_dir / "model.onnx"), opts,
                                   providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def embed(texts, batch=32):
        out = []
        for i in range(0, len(texts), batch):
            enc = tok.encode_batch(texts[i:i + batch])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in names:
                feeds["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
            (hidden,) = session.run(["last_hidden_state"], feeds)
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            out.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
        return np.concatenate(out)

    return embed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", required=True, type=Path, help="ingest.py --dump output")
    ap.add_argument("--corpus", required=True, type=Path, help="the folder ingest.py read")
    ap.add_argument("--questions", required=True, type=Path)
    ap.add_argument("--model-dir", type=Path, default=Path("models/embed/all-MiniLM-L6-v2"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=256)
    args = ap.parse_args()

    corpus = args.corpus.resolve()
    nodes = [json.loads(l) for l in args.nodes.open(encoding="utf-8") if l.strip()]
    files = [str(Path(n["file_path"]).resolve().relative_to(corpus)) for n in nodes]
    questions = [json.loads(l) for l in args.questions.open(encoding="utf-8") if l.strip()]
    questions = [q for q in questions if q["sources"]]

    embed = embedder(args.model_dir, args.threads, args.max_length)
    node_vectors = embed([n["text"] for n in nodes])
    question_vectors = embed([q["question"] for q in questions])
    scores = question_vectors @ node_vectors.T

    def expects(q, f):
        return any(f == s or (s.endswith("/") and f.startswith(s)) for s in q["sources"])

    ranks = []
    for q, row in zip(questions, scores):
        top = np.argsort(-row, kind="stable")[:10]
        ranks.append(next((r for r, i in enumerate(top) if expects(q, files[i])), None))
    n = len(ranks)
    result = {
        "retrieval": "llamaindex-dense",
        "answerable": n,
        "nodes": len(nodes),
        "mean_node_tokens": round(float(np.mean([x["tokens"] for x in nodes])), 1),
        "recall_at_1": sum(1 for r in ranks if r is not None and r < 1) / n,
        "recall_at_5": sum(1 for r in ranks if r is not None and r < 5) / n,
        "mrr_at_10": sum(1 / (r + 1) for r in ranks if r is not None) / n,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
