#!/usr/bin/env bash
# Set up a TPU / GPU / CPU VM: a venv in the repository with the accelerator's jax and the
# package (and its extras). Run on the VM, in the repository:
#
#   launch/setup_vm.sh [--dry-run] tpu|gpu|cpu [EXTRAS]     # EXTRAS e.g. "test,beam"
#
# TPU VMs get jax[tpu] (libtpu from Google's release index), GPU VMs jax[cuda12] (CUDA 12
# wheels from PyPI), CPU plain jax. PYTHON (default python3) picks the interpreter.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if [[ "${1:-}" == --dry-run ]]; then DRY_RUN=1; shift; fi
kind=${1:-}
extras=${2:-}
case "${kind}" in
  tpu) jax_spec="jax[tpu]"; index=(-f https://storage.googleapis.com/jax-releases/libtpu_releases.html) ;;
  gpu) jax_spec="jax[cuda12]"; index=() ;;
  cpu) jax_spec="jax"; index=() ;;
  *) die "usage: launch/setup_vm.sh [--dry-run] tpu|gpu|cpu [EXTRAS]" ;;
esac
root=$(repo_root)
venv="${root}/.venv"
run "${PYTHON:-python3}" -m venv "${venv}"
run "${venv}/bin/python" -m pip install --upgrade pip
run "${venv}/bin/python" -m pip install "${jax_spec}" "${index[@]}"
run "${venv}/bin/python" -m pip install -e "${root}${extras:+[${extras}]}"
run "${venv}/bin/python" -c "import jax; print(jax.devices())"
