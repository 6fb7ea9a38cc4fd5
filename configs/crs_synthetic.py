"""RecLLM on the embedded synthetic catalogue with a 2.2M decoder trained in the workdir
(`make crs-tiny`; `make crs` and `python -m crs_jax.main` default to configs/crs_gemma3.py:cpu).

    python -m crs_jax.main --config=configs/crs_synthetic.py --workdir=runs/crs   # = make crs-tiny

A tiny decoder with a SentencePiece vocabulary trained on the bootstrap corpus, pretrained in the
workdir on teacher transcripts, then task-routed MoDE adapters on the five RecLLM tasks; 200
simulated sessions of at most 8 turns per system. `configs/crs_gemma3.py` is the same job on
Gemma 3 270M.
"""

import ml_collections

from mode_jax.config_files import sibling

blocks = sibling(__file__, "blocks")


def crs_block(**kw):
  d = dict(catalogue_size=500, catalogue_seed=0, num_sessions=600, num_eval_sessions=40, seed=0,
           p_forced_intent=0.5, vocab_size=1024)
  d.update(kw)
  return ml_collections.ConfigDict(d)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  del arg
  c = ml_collections.ConfigDict()
  c.job = "crs_jax.job:crs_synthetic"
  c.seed = 0
  c.model = ml_collections.ConfigDict(dict(
      name="tiny", dtype="float32", param_dtype="float32", scan_layers=False, remat=False,
      max_seq_len=512,
      overrides=dict(vocab_size=1024, embed_dim=192, num_layers=4, num_heads=4, num_kv_heads=2,
                     head_dim=48, mlp_dim=576)))
  c.checkpoint = ml_collections.ConfigDict(dict(hf_path="", pretrained=""))
  c.vocab = ml_collections.ConfigDict(dict(kind="sentencepiece", path=""))
  # dm and user rows outnumber query / rank / profile rows 4-5 to 1: cap each task's share of
  # the mixture at 700 examples' worth, so the query writer and ranker get ~37% of the rows
  c.data = blocks.data_block("crs_jax.data:tasks_kind", inputs_len=288, targets_len=56,
                             mix_maximum=700)
  c.data.crs = crs_block()
  c.base = ml_collections.ConfigDict(dict(
      train=blocks.train_block(steps=100, lr=3e-3, batch=16),
      data=blocks.data_block("crs_jax.data:pretrain_kind", inputs_len=8, targets_len=280,
                             loss_on_targets_only=False)))
  c.base.data.crs = crs_block()
  c.adapter = ml_collections.ConfigDict(dict(
      method="mode", experts=4, rank=8, block=1, targets=("q", "k", "v", "o", "gate", "up",
                                                          "down"),
      scale=1.0, router="task", top_k=0, impl="xla"))
  c.train = blocks.train_block(steps=250, lr=3e-3, batch=16, warmup=25)
  # the baseline of "one model, several tasks": one LoRA per task instead of `adapter`, at its
  # budget (rank 0: matched to it), each on its task alone for train.steps / 5 steps
  c.per_task = ml_collections.ConfigDict(dict(enabled=False, rank=0))
  c.mesh = blocks.mesh_block()
  c.eval = ml_collections.ConfigDict(dict(num_examples=40, max_new_tokens=64, first_line=True))
  c.report = ml_collections.ConfigDict(dict(encoder="backbone"))   # or "hashing"
  c.sessions = ml_collections.ConfigDict(dict(
      num_sessions=200, max_turns=8, batch_size=0,
      # the profile RecLLM's prompts show: given (the environment's) | written (by the
      # model's own profile task from the watch history) | none
      profile="given",
      # where the candidates come from: search (query writer -> search API) | dense (dual
      # encoder on the conversation) | hybrid (both, reciprocal rank fusion); how the ranker
      # picks: generate ("<k>: why", greedy) | score (log-likelihood of each "<k>:")
      retriever="search", ranking="generate",
      slate=1,              # items shown per recommendation turn (RecLLM and the baselines)
      variants=(),          # more RecLLM rows, each "<retriever>/<ranking>", e.g. "hybrid/score"
      dense=ml_collections.ConfigDict(dict(features_dim=1024, dim=64, steps=400,
                                           temperature=0.1)),
      baselines=("random", "popularity", "rule", "teacher", "oracle"),
      systems=()))          # run only these session sets (names as in the table; "RecLLM": all
                            # RecLLM rows); () runs every one
  return c
