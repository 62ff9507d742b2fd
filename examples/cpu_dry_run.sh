#!/usr/bin/env bash
# The main job's CPU check, end to end on a machine with no GPU and no network:
#   1. build a demo workspace (tiny random-weight Qwen2.5-VL, a geometry3k look-alike, SFT data);
#   2. run the data stage for real (srpo_data.prepare_rl writes the RL parquet files);
#   3. DRY_RUN=1 both run scripts (7B: 8 GPUs, 32B: 4 x 8 GPUs) through every stage.
# With your own model and data, skip this script and run step 3 with MODEL_PATH/DATA_DIR of yours.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON=${PYTHON:-$HERE/../.venv/bin/python}
# A fresh folder per run unless DEMO_DIR is given (a fixed /tmp path would be shared by parallel users).
DEMO_DIR=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/srpo-demo.XXXXXX")}
echo "cpu_dry_run: workspace $DEMO_DIR"
export PYTHON TOKENIZERS_PARALLELISM=false

"$PYTHON" -m srpo_data.demo --out "$DEMO_DIR"
export MODEL_PATH="$DEMO_DIR/tiny-qwen" DATA_DIR="$DEMO_DIR/data" OUTPUT_DIR="$DEMO_DIR/outputs"

STAGES=data SFT_DATA="$DATA_DIR/sft/sft.parquet" bash "$HERE/run_qwen7b_srpo.sh"
DRY_RUN=1 bash "$HERE/run_qwen7b_srpo.sh" "$@"
DRY_RUN=1 bash "$HERE/run_qwen32b_srpo.sh" "$@"
echo "cpu_dry_run: both scripts passed their dry run (workspace: $DEMO_DIR)"
