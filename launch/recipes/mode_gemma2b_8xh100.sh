#!/usr/bin/env bash
# MoDE 16x4 on Gemma 2B over SNI, one host with 8 H100s: a single process drives the 8 GPUs
# (data parallel x FSDP 2 x 4).
#
#   launch/recipes/mode_gemma2b_8xh100.sh [--dry-run]
#
# CKPT (default /data/gemma-2b) holds the HF checkpoint and tokenizer.model; SNI (default
# /data/natural-instructions) an SNI clone.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
dry=()
if [[ "${1:-}" == --dry-run ]]; then dry=(--dry-run); shift; fi
ckpt=${CKPT:-/data/gemma-2b}
sni=${SNI:-/data/natural-instructions}
exec "${here}/../gpu_multinode.sh" "${dry[@]}" localhost:12345 1 0 \
    configs/mode_gemma2b_sni.py:mode16x4 \
    --config.checkpoint.hf_path="${ckpt}" --config.vocab.path="${ckpt}/tokenizer.model" \
    --config.data.sni_dir="${sni}" \
    --config.mesh.shape="(2,4,1)" --config.train.batch_size=128 --config.adapter.impl=pallas
