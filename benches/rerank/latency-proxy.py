#!/usr/bin/env python3
"""Builds a latency stand-in for a MiniLM-L6 cross-encoder (e.g. ms-marco-MiniLM-L-6-v2, which
has exactly all-MiniLM-L6-v2's architecture: 6 layers, 384 wide): the default embedding model's
ONNX graph with a `logits` head (mean of the last hidden state's first feature). Its scores mean
nothing; its cost per (question, passage) pair is a MiniLM-L6 cross-encoder's. No real reranker
model is available from PyPI, so this is how `rag eval` measures what reranking would cost.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install onnx
    /tmp/v/bin/python benches/rerank/latency-proxy.py models/embed/all-MiniLM-L6-v2 /tmp/proxy-reranker
"""
import os
import shutil
import sys

import onnx
from onnx import TensorProto as T, helper as h

src, out = sys.argv[1], sys.argv[2]
model = onnx.load(os.path.join(src, "model.onnx"))
graph = model.graph
hidden = next(o.name for o in graph.output if o.name == "last_hidden_state")
graph.node.extend([
    h.make_node("Constant", [], ["rp_axes"], value=h.make_tensor("a", T.INT64, [1], [1])),
    # The graph's opset (13) takes ReduceMean's axes as an attribute.
    h.make_node("ReduceMean", [hidden], ["rp_mean"], axes=[1], keepdims=0),  # [B, 384]
    h.make_node("Constant", [], ["rp_start"], value=h.make_tensor("s", T.INT64, [1], [0])),
    h.make_node("Constant", [], ["rp_end"], value=h.make_tensor("e", T.INT64, [1], [1])),
    h.make_node("Slice", ["rp_mean", "rp_start", "rp_end", "rp_axes"], ["logits"]),  # [B, 1]
])
del graph.output[:]
graph.output.append(h.make_tensor_value_info("logits", T.FLOAT, ["batch", 1]))
os.makedirs(out, exist_ok=True)
onnx.save(model, os.path.join(out, "model.onnx"))
for name in ("tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(src, name), os.path.join(out, name))
print(f"wrote {out}")
