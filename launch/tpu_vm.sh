#!/usr/bin/env bash
# Run one job on every worker of a Cloud TPU VM (single- or multi-host), big_vision style:
#
#   launch/tpu_vm.sh [--dry-run] NAME ZONE CONFIG [--config.overrides ...]
#
# Copies the committed tree (git archive of HEAD) to ~/mode-jax on all workers, sets it up
# (launch/setup_vm.sh tpu gcs; SETUP=0 skips it on later runs), then runs `python -m mode_jax.main --config=CONFIG
# --workdir=WORKDIR [overrides]` on all workers at once with MODE_JAX_DISTRIBUTED=1, so each
# process calls jax.distributed.initialize() (on TPU it finds its peers itself).
# WORKDIR (default gs://$BUCKET/runs/NAME when BUCKET is set, else runs/NAME) must be shared by
# the workers for multi-host checkpoints; PROJECT sets gcloud's --project.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if [[ "${1:-}" == --dry-run ]]; then DRY_RUN=1; shift; fi
[[ $# -ge 3 ]] || die "usage: launch/tpu_vm.sh [--dry-run] NAME ZONE CONFIG [overrides...]"
name=$1 zone=$2 config=$3
shift 3
workdir=${WORKDIR:-${BUCKET:+gs://${BUCKET}/runs/${name}}}
workdir=${workdir:-runs/${name}}
gcloud_tpu=(gcloud compute tpus tpu-vm)
common=(--zone="${zone}" --worker=all ${PROJECT:+--project="${PROJECT}"})
remote_dir=mode-jax                  # relative to the workers' home directory
tarball=${TMPDIR:-/tmp}/mode-jax-${name}.tar.gz
run git -C "$(repo_root)" archive --format=tar.gz -o "${tarball}" HEAD
run "${gcloud_tpu[@]}" scp "${tarball}" "${name}:mode-jax.tar.gz" "${common[@]}"
run "${gcloud_tpu[@]}" ssh "${name}" "${common[@]}" \
    --command="mkdir -p ${remote_dir} && tar -xzf mode-jax.tar.gz -C ${remote_dir}"
if [[ "${SETUP:-1}" == 1 ]]; then
  run "${gcloud_tpu[@]}" ssh "${name}" "${common[@]}" \
      --command="cd ${remote_dir} && bash launch/setup_vm.sh tpu gcs"
fi
job="cd ${remote_dir} && MODE_JAX_DISTRIBUTED=1 .venv/bin/python -m mode_jax.main"
job+=" --config=${config} --workdir=${workdir}"
for arg in "$@"; do
  job+=" $(printf '%q' "${arg}")"
done
run "${gcloud_tpu[@]}" ssh "${name}" "${common[@]}" --command="${job}"
