#!/usr/bin/env bash
# The main job's CPU check, end to end on a machine with no GPU and no network:
#   1. build a demo workspace (tiny random-weight Qwen2.5-VL, a geometry3k look-alike, SFT data);
#   2. run the data stage for real (srpo_data.prepare_rl writes the RL parquet files);
#   3. DRY_RUN=1 both run scripts (7B: 8 GPUs, 32B: 4 x 8 GPUs) through every stage
#      (MODEL_FAMILY=qwen3vl: the tiny Qwen3-VL, and the Qwen3-VL 8B / 32B scripts).
# With your own model and data, skip this script and run step 3 with MODEL_PATH/DATA_DIR of yours.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON=${PYTHON:-$HERE/../.venv/bin/python}
# MODEL_FAMILY=qwen3vl: the tiny Qwen3-VL and run_qwen3vl8b_srpo.sh / run_qwen3vl32b_srpo.sh instead.
MODEL_FAMILY=${MODEL_FAMILY:-qwen25vl}
case ${MODEL_FAMILY} in
    qwen25vl) SCRIPTS=(run_qwen7b_srpo.sh run_qwen32b_srpo.sh) ;;
    qwen3vl) SCRIPTS=(run_qwen3vl8b_srpo.sh run_qwen3vl32b_srpo.sh) ;;
    *) echo "cpu_dry_run: unknown MODEL_FAMILY=${MODEL_FAMILY}; use qwen25vl or qwen3vl" >&2; exit 2 ;;
esac

# A fresh folder per run unless DEMO_DIR is given (a fixed /tmp path would be shared by parallel users).
DEMO_DIR=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/srpo-demo.XXXXXX")}
echo "cpu_dry_run: workspace $DEMO_DIR"
export PYTHON TOKENIZERS_PARALLELISM=false

"$PYTHON" -m srpo_data.offline.demo --out "$DEMO_DIR" --family "$MODEL_FAMILY"
export MODEL_PATH="$DEMO_DIR/tiny-qwen" DATA_DIR="$DEMO_DIR/data" OUTPUT_DIR="$DEMO_DIR/outputs"

STAGES=data SFT_DATA="$DATA_DIR/sft/sft.parquet" bash "$HERE/${SCRIPTS[0]}"
DRY_RUN=1 bash "$HERE/${SCRIPTS[0]}" "$@"
DRY_RUN=1 bash "$HERE/${SCRIPTS[1]}" "$@"
echo "cpu_dry_run: both scripts passed their dry run (${SCRIPTS[*]}, workspace: $DEMO_DIR)"
