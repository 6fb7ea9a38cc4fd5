#!/usr/bin/env bash
# MoDE 16x4 on Gemma 2B over SNI, one TPU v5e-8 (8 chips, one host): FSDP over the 8 chips.
#
#   launch/recipes/mode_gemma2b_v5e8.sh [--dry-run] NAME ZONE
#
# Needs on the VM: the Gemma 2B HF checkpoint and its tokenizer.model at CKPT (default
# /data/gemma-2b) and an SNI clone at SNI (default /data/natural-instructions).
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
dry=()
if [[ "${1:-}" == --dry-run ]]; then dry=(--dry-run); shift; fi
[[ $# -eq 2 ]] || { echo "usage: $0 [--dry-run] NAME ZONE" >&2; exit 2; }
ckpt=${CKPT:-/data/gemma-2b}
sni=${SNI:-/data/natural-instructions}
exec "${here}/../tpu_vm.sh" "${dry[@]}" "$1" "$2" configs/mode_gemma2b_sni.py:mode16x4 \
    --config.checkpoint.hf_path="${ckpt}" --config.vocab.path="${ckpt}/tokenizer.model" \
    --config.data.sni_dir="${sni}" \
    --config.mesh.shape="(1,8,1)" --config.train.batch_size=64 \
    --config.model.dtype=bfloat16 --config.adapter.impl=pallas
