#!/usr/bin/env bash
# One training process per GPU host (MaxText / JAX multi-process style). Run the same command
# on every host with its own PROCESS_ID (0 on the coordinator):
#
#   launch/gpu_multinode.sh [--dry-run] COORDINATOR:PORT NUM_PROCESSES PROCESS_ID CONFIG \
#       [--config.overrides ...]
#
# The three values reach jax.distributed.initialize through JAX_COORDINATOR_ADDRESS,
# JAX_NUM_PROCESSES and JAX_PROCESS_ID (read by mode_jax.main); every process drives all GPUs
# of its host. Under SLURM, pass "$SLURM_NNODES" and "$SLURM_PROCID". WORKDIR (default
# runs/<config name>) must be on a filesystem all hosts share. XLA_FLAGS defaults to the
# latency-hiding scheduler; set it to override.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if [[ "${1:-}" == --dry-run ]]; then DRY_RUN=1; shift; fi
[[ $# -ge 4 ]] || die "usage: launch/gpu_multinode.sh [--dry-run] COORDINATOR:PORT NUM_PROCESSES PROCESS_ID CONFIG [overrides...]"
coordinator=$1 nproc=$2 pid=$3 config=$4
shift 4
[[ "${nproc}" =~ ^[0-9]+$ && "${pid}" =~ ^[0-9]+$ && "${pid}" -lt "${nproc}" ]] \
    || die "PROCESS_ID (${pid}) must be an integer below NUM_PROCESSES (${nproc})"
workdir=${WORKDIR:-runs/$(basename "${config%%.py*}")}
root=$(repo_root)
run env JAX_COORDINATOR_ADDRESS="${coordinator}" JAX_NUM_PROCESSES="${nproc}" \
    JAX_PROCESS_ID="${pid}" XLA_FLAGS="${XLA_FLAGS:---xla_gpu_enable_latency_hiding_scheduler=true}" \
    "${root}/.venv/bin/python" -m mode_jax.main --config="${config}" --workdir="${workdir}" "$@"
