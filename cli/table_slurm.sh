#!/usr/bin/env bash
# The Table 1 grid on a Slurm cluster: one array task per cell, one GPU each, then one collect job.
#
#   flags=(--data /data/ACDC --sam sam_vit_b_01ec64.pth --medsam medsam_vit_b.pth --out results)
#   n=$(deno task -q table "${flags[@]}" --list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
#   job=$(sbatch --parsable --array=0-$((n - 1)) cli/table_slurm.sh "${flags[@]}")
#   sbatch --dependency=afterany:"$job" --wrap "deno task table ${flags[*]} --collect"
#
# Each task trains (or resumes, or skips when finished) exactly the cell `--list` shows at its index, in its
# own run directory under --out, so a failed or pre-empted task is simply resubmitted.
#SBATCH --job-name=sam-medseg-table
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
: "${SLURM_ARRAY_TASK_ID:?run through sbatch --array (see the header of this script)}"
exec deno task table "$@" --cell "$SLURM_ARRAY_TASK_ID"
