#!/usr/bin/env bash
# Everything to measure on a GPU machine in one run (goal: under 8 minutes on one H100), figures as JSON in one folder.
#
#   benchmarks/gpu_suite.sh --wheels DIR --out DIR     on the GPU machine, from the repository root
#   benchmarks/gpu_suite.sh --tiny --out DIR           every step on tiny shapes on a CPU: tests the script itself
#
# --out holds only logs and JSON (small enough to bring back from a lent machine); models, checkpoints and
# installed wheels go to --work (default /tmp/gpu_suite_work).
#
# Steps, each under its own time limit and recorded whatever its outcome:
#   wheels       installs what the environment lacks (trl, bitsandbytes, datasets, liger-kernel) from --wheels DIR
#                (pip --no-index --no-deps --target WORK/site: the environment itself is left as it is);
#                fill DIR beforehand on a machine with network: pip download --no-deps -d DIR trl==X datasets==Y ...
#   doctor       python -m src.doctor on the debug run with the device, dtype and optimizer left on auto
#                (on a GPU: 4-bit on CUDA, bf16, paged 8-bit AdamW, gradient checkpointing) -> doctor.json
#   gpu_train    python -m benchmarks.gpu_train, SOLAR-10.7B and Llama-3.2-3B shapes -> gpu_train-SHAPE.json
#   gpu_generate python -m benchmarks.gpu_generate, 499 test prompts, bf16 and 4-bit -> gpu_generate.json
# Then suite.json: machine, date, command, and per step its command, exit status and seconds.
# Exit 0 when every step exited 0. Environment: PYTHON (default .venv/bin/python, else python3),
# DIALSUM_SHARED (tokenizers and data, default ../shared), STEP_TIMEOUT (seconds a step may take, default 600).
set -uo pipefail

usage() { echo "usage: benchmarks/gpu_suite.sh [--tiny] [--wheels DIR] [--out DIR] [--work DIR] [--shared DIR]" >&2; }
die() { echo "gpu_suite: $*" >&2; exit 2; }

ARGS="$*"
TINY=0; WHEELS=""; OUT="gpu_suite_out"; WORK="/tmp/gpu_suite_work"; SHARED_DIR="${DIALSUM_SHARED:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) TINY=1; shift ;;
    --wheels) [ $# -ge 2 ] || die "--wheels needs a folder"; WHEELS="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a folder"; OUT="$2"; shift 2 ;;
    --work) [ $# -ge 2 ] || die "--work needs a folder"; WORK="$2"; shift 2 ;;
    --shared) [ $# -ge 2 ] || die "--shared needs a folder"; SHARED_DIR="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die "unknown argument '$1'" ;;
  esac
done

# folders given on the command line are relative to where the suite was started, not to the repository
REPO="$(cd "$(dirname "$0")/.." && pwd)" || die "cannot find the repository root"
[ -z "$WHEELS" ] || [ -d "$WHEELS" ] || die "--wheels $WHEELS: no such folder"
[ -z "$WHEELS" ] || WHEELS="$(cd "$WHEELS" && pwd)"
SHARED_DIR="${SHARED_DIR:-$REPO/../shared}"
[ -d "$SHARED_DIR/tokenizers" ] && [ -d "$SHARED_DIR/data" ] ||
  die "no tokenizers/ and data/ under $SHARED_DIR: pass --shared DIR (or set DIALSUM_SHARED)"
mkdir -p "$OUT" "$WORK/site" || die "cannot create --out $OUT or --work $WORK"
OUT="$(cd "$OUT" && pwd)"; WORK="$(cd "$WORK" && pwd)"; SHARED_DIR="$(cd "$SHARED_DIR" && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
elif [ -x "$PYTHON" ] && [ "${PYTHON#/}" = "$PYTHON" ] && [ "${PYTHON#*/}" != "$PYTHON" ]; then
  PYTHON="$(pwd)/$PYTHON"
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "no Python at '$PYTHON': set PYTHON=/path/to/python"
cd "$REPO" || die "cannot enter $REPO"
export DIALSUM_SHARED="$SHARED_DIR" HF_HUB_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
STEPS_TSV="$WORK/steps.tsv"; : > "$STEPS_TSV"
STARTED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# record NAME RC START CMD: a row of steps.tsv
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$(( $(date +%s) - $3 ))" "$4" >> "$STEPS_TSV"; }

# run NAME LOG CMD...: one step under STEP_TIMEOUT, its output in LOG, a row in steps.tsv
run() {
  local name="$1" log="$2"; shift 2
  local start rc
  start=$(date +%s)
  echo "== $name: $*"
  timeout "${STEP_TIMEOUT:-600}" "$@" > "$log" 2>&1
  rc=$?
  record "$name" "$rc" "$start" "$*"
  tail -n 3 "$log"
}

# wheels: each missing package from the wheel folder (import name, pip name)
install_missing() {
  local import_name pip_name status
  for pair in trl:trl bitsandbytes:bitsandbytes datasets:datasets liger_kernel:liger-kernel; do
    import_name="${pair%%:*}"; pip_name="${pair##*:}"
    if "$PYTHON" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$import_name') is None)"; then
      status="present"
    elif [ -z "$WHEELS" ]; then
      status="missing (no --wheels folder given)"
    elif "$PYTHON" -m pip install -q --no-index --no-deps --find-links "$WHEELS" --target "$WORK/site" "$pip_name"; then
      status="installed from $WHEELS"
    else
      status="missing (no wheel for it in $WHEELS)"
    fi
    echo "$pip_name: $status"
  done
}

echo "== wheels"
WHEELS_START=$(date +%s)
install_missing > "$OUT/wheels.log" 2>&1
record wheels $? "$WHEELS_START" "install_missing ${WHEELS:-(no --wheels)}"
cat "$OUT/wheels.log"
if [ "$TINY" = 1 ]; then
  TRAIN_FLAGS=(--smoke --rows 16 --steps 1 --warmup 1)
  GEN_FLAGS=(--smoke --n 8 --max-new-tokens 8 --backend transformers)
  SOLAR_MODEL="$WORK/train/solar-10.7b-smoke/model"
else
  TRAIN_FLAGS=(--steps "${TRAIN_STEPS:-8}" --warmup 2)
  GEN_FLAGS=(--n 499 --max-new-tokens 128 --batch-size 64 --backend both)
  SOLAR_MODEL="$WORK/train/solar-10.7b/model"
fi

run doctor "$OUT/doctor.log" "$PYTHON" -m src.doctor --debug-small model.device=auto training.compute_dtype=auto \
  training.optim=auto --keep "$WORK/doctor"
grep '^{"ok"' "$OUT/doctor.log" | tail -n 1 > "$OUT/doctor.json"
for shape in solar-10.7b llama-3.2-3b; do
  run "gpu_train-$shape" "$OUT/gpu_train-$shape.log" "$PYTHON" -m benchmarks.gpu_train --shape "$shape" \
    --data "$DIALSUM_SHARED/data/dialogsum-ko/dev.csv" --work "$WORK/train" --out "$OUT/gpu_train-$shape.json" \
    "${TRAIN_FLAGS[@]}"
done
run gpu_generate "$OUT/gpu_generate.log" "$PYTHON" -m benchmarks.gpu_generate --precision both \
  --model-dir "$SOLAR_MODEL" --work "$WORK/generate" --out "$OUT/gpu_generate.json" "${GEN_FLAGS[@]}"

"$PYTHON" - "$OUT" "$STEPS_TSV" "$STARTED" "$TINY" "$ARGS" <<'EOF'
"""suite.json: machine, date, command and each step's exit status and seconds."""
import json
import platform
import subprocess
import sys
from pathlib import Path

out, tsv, started, tiny = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
steps = []
for row in tsv.read_text(encoding="utf-8").splitlines():
    name, rc, seconds, command = row.split("\t", 3)
    steps.append({"name": name, "rc": int(rc), "seconds": int(seconds), "command": command})
try:
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    torch_version = torch.__version__
except ImportError:
    gpu, torch_version = None, None
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or None
summary = {"ok": all(s["rc"] == 0 for s in steps), "tiny": tiny, "started": started, "machine": gpu or f"CPU {platform.machine()}",
           "torch": torch_version, "python": platform.python_version(), "git_commit": commit,
           "command": "benchmarks/gpu_suite.sh " + sys.argv[5], "steps": steps,
           "figures": sorted(p.name for p in out.glob("*.json") if p.name != "suite.json")}
(out / "suite.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
print(json.dumps({"ok": summary["ok"], "steps": {s["name"]: s["rc"] for s in steps}, "out": str(out)}))
sys.exit(0 if summary["ok"] else 1)
EOF
