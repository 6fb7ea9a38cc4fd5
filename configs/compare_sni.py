"""The comparison runner on SNI: the shared SNI files by default (10 English train tasks split
90/10 within task), or a full clone with a real base:

    python -m mode_jax.experiments.compare --config=configs/compare_sni.py --workdir=runs/cmp_sni
    python -m mode_jax.experiments.compare --config=configs/compare_sni.py --workdir=... \
        --config.data.sni_dir=/data/natural-instructions \
        --config.checkpoint.hf_path=/ckpts/gemma-2b --config.vocab.kind=sentencepiece \
        --config.vocab.path=/ckpts/gemma-2b/tokenizer.model --config.data.bos_id=2 \
        --config.model.dtype=bfloat16 --config.train.steps=20000 --config.train.batch_size=128

Without `checkpoint.hf_path` the base is the tiny byte-level model pretrained in the workdir, as
in `make run` (a plumbing check on CPU, not a meaningful SNI result).
"""

import os

import ml_collections

from mode_jax.config_files import sibling

_HERE = os.path.dirname(os.path.abspath(__file__))
base_cfg = sibling(__file__, "compare_synthetic")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  c = base_cfg.get_config(arg)
  c.data.kind = "sni"
  c.data.sni_dir = os.path.join(_HERE, "..", "..", "shared", "data", "sni")
  c.data.num_pos = 2
  c.data.inputs_len, c.data.targets_len = 1024, 64
  c.train.batch_size = 8
  c.compare.targets = ("q", "k", "v", "o")
  c.eval.max_new_tokens = 48
  c.model.max_seq_len = 4096   # SNI prompts (def + 2 pos) reach ~3k bytes
  return c
