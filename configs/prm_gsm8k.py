"""A Gemma 3 270M PRM on exactly labelled GSM8K steps (injected errors in GSM8K train
references), scored on the offline ProcessBench-protocol set (GSM8K test):

    python -m prm_jax.gsm8k_processbench --records --input=../shared/data/gsm8k/train.jsonl \\
        --output=runs/gsm8k_prm_records.jsonl --num=2000
    python -m mode_jax.main --config=configs/prm_gsm8k.py --workdir=runs/prm_gsm8k
    python -m prm_jax.gsm8k_processbench --output=runs/gsm8k_pb300.jsonl --num=300
    python -m prm_jax.evaluate --prm=runs/prm_gsm8k/prm_model --data=runs/gsm8k_pb300.jsonl \\
        --protocol=both
    # the scalar head instead of the LM's own "+" / "-" logits:
    ... --config=configs/prm_gsm8k.py:scalar --workdir=runs/prm_gsm8k_scalar

The records (`gsm8k_processbench.training_records`): per train problem its reference (every
step labelled 1) and the same reference with one arithmetic or copy error injected (1 before it,
0 from it on), the kinds of error the evaluation set injects; the test split's questions are
left out by construction (`--exclude`, default the test.jsonl beside --input). What this PRM
measures is whether the backbone learns to find injected arithmetic / copy errors in GSM8K
solutions, in domain: an easier task than ProcessBench's errors of real policies, and labels no
policy made (OmegaPRM's GSM8K labels need the GSM8K policy: configs/omegaprm_arith.py:gsm8k).

Recipe: the study v2 Gemma PRM's (LoRA rank 8 on q/k/v/o, lr 1e-3), rows of 512 tokens (a
GSM8K question and solution is about 150-250 Gemma tokens) x 2 per step, 300 steps: about
2 epochs of 2,000 problems' two solutions would need ~1,000 steps; 300 is what a CPU session
affords (about 25 minutes here), set from that budget, not tuned on the evaluation set.
"""

import ml_collections

from mode_jax.config_files import sibling


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """"": the "+" / "-" token reading (Math-Shepherd's); "scalar": a scalar head."""
  if arg not in ("", "scalar"):
    raise ValueError(f"prm_gsm8k: unknown variant {arg!r} (use '' or 'scalar')")
  arith = sibling(__file__, "prm_arith")
  c = arith.get_config()
  c.checkpoint.hf_path, c.checkpoint.pretrained = "", "gemma3_270m"
  c.adapter = ml_collections.ConfigDict(arith.GEMMA_LORA)
  c.prm.records = ("runs/gsm8k_prm_records.jsonl",)
  c.prm.head = "scalar" if arg == "scalar" else "tokens"
  c.prm.max_len = 512
  c.train.steps, c.train.batch_size, c.train.lr = 300, 2, 1e-3
  c.train.eval_every, c.train.log_every = 50, 15
  return c
