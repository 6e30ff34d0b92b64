#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Reconstruct a folder of photos with Monocle as a Slurm job array: array task k of N runs
# `--shard k/N`, one slice of the sorted input list, so the tasks share nothing but OUTDIR.
#
#   sbatch --array=1-8 monocle_array.sh INPUT OUTDIR [more `monocle reconstruct` options]
#
# N is the size of the array, taken from Slurm; the array must then be one contiguous range
# (1-8, 0-15, 1-100%10), not a list or a stepped range. To re-run some shards of an earlier split
# on their own, give N explicitly and use the shard numbers as array ids:
#
#   MONOCLE_SHARDS=8 sbatch --array=3,5 monocle_array.sh INPUT OUTDIR
#
# Finished inputs are skipped, so re-running a shard only redoes what is missing.
# Environment: BLENDER (default: blender on PATH), MONOCLE_FORMAT (default glb), MONOCLE_ENGINE
# (default auto), MONOCLE_SHARDS (see above).
#
#SBATCH --job-name=monocle
#SBATCH --array=1-8
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --output=monocle-%A_%a.log

set -euo pipefail

usage() {
    echo "usage: sbatch --array=1-N $0 INPUT OUTDIR [monocle reconstruct options]" >&2
    echo "monocle_array.sh: $1" >&2
    exit 2
}

[[ $# -ge 2 ]] || usage "give an input folder and an output folder"
input=$1
outdir=$2
shift 2
[[ -n $input && -n $outdir ]] || usage "the input and output folders must not be empty"

need() {
    [[ ${!1:-} =~ ^[0-9]+$ ]] || usage "$1 is not set: submit this script with sbatch --array"
}

need SLURM_ARRAY_TASK_ID
if [[ -n ${MONOCLE_SHARDS:-} ]]; then
    [[ $MONOCLE_SHARDS =~ ^[1-9][0-9]*$ ]] || usage "MONOCLE_SHARDS must be a whole number of at least 1"
    count=$MONOCLE_SHARDS
    shard=$SLURM_ARRAY_TASK_ID
    (( shard >= 1 && shard <= count )) || usage "with MONOCLE_SHARDS=$count the array ids must lie in 1-$count"
else
    need SLURM_ARRAY_TASK_MIN
    need SLURM_ARRAY_TASK_MAX
    need SLURM_ARRAY_TASK_COUNT
    count=$SLURM_ARRAY_TASK_COUNT
    if (( SLURM_ARRAY_TASK_MAX - SLURM_ARRAY_TASK_MIN + 1 != count || ${SLURM_ARRAY_TASK_STEP:-1} != 1 )); then
        usage "--array must be one contiguous range like 1-$count (or set MONOCLE_SHARDS)"
    fi
    shard=$(( SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN + 1 ))
fi

exec "${BLENDER:-blender}" -b -c monocle reconstruct "$input" -o "$outdir" \
    --format "${MONOCLE_FORMAT:-glb}" --engine "${MONOCLE_ENGINE:-auto}" \
    --shard "$shard/$count" --report "${outdir%/}/report-$shard-of-$count.json" "$@"
