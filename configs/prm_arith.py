"""A PRM on OmegaPRM labels of the arithmetic env, through the mode_jax trainer:

    python -m mode_jax.main --config=configs/prm_arith.py --workdir=runs/prm_omegaprm
    # on Math-Shepherd labels, with the pairwise objective, or through MoDE adapters:
    ... --config.prm.records=runs/shepherd_jax/records.jsonl
    ... --config.prm.objective=pairwise
    ... --config.adapter.method=mode --config.adapter.experts=4 --config.adapter.rank=8
    # label source: the exact checker's labels, or MC labels the checker agrees with:
    ... --config.prm.labels=exact            # or consensus, hard@0.5

PRE-REGISTERED VERIFICATION STUDY (`--config=configs/prm_arith.py:study`, fixed 2026-11-30
before any run of it; finished 2026-12-01 with its design unchanged, result in
docs/benchmarks.md and studies/prm_study/): 500 held-out problems sampled once (eval_seed 13,
never used before), 64 samples each. (Found 2026-12-06: that draw, by seed alone, shared 150
problems with the policy's SFT data and 2 with the collection; `pipeline.heldout_problems` now
skips every training question, so a re-run evaluates on another, disjoint set.) Primary comparison: PRM-weighted self-consistency with the PRM
trained on the OmegaPRM records (MC labels, occurrence-weighted, soft objective), product
aggregation, minus majority vote, at N = 16 and N = 64; paired bootstrap over problems (1,000
replicates, 95% interval), also reported as a share of the oracle's headroom (pass@N minus
majority). Secondary: the exact / consensus label-source PRMs, Math-Shepherd labels, the ORM,
the oracle process verifier and the step-level beam search at equal tokens.

The backbone starts from the tiny policy (runs/policy/policy_model, from
configs/policy_arith.py) and the records default to runs/omegaprm_jax/records.jsonl
(`python -m prm_jax.collect --config=configs/omegaprm_arith.py:jax`).
"""

import ml_collections

from mode_jax.config_files import sibling
from prm_jax.policy.sft import TEMPLATE

blocks = sibling(__file__, "blocks")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """"": the pipeline as measured so far; "study": the pre-registered verification study
  (module docstring)."""
  if arg not in ("", "study"):
    raise ValueError(f"prm_arith: unknown variant {arg!r} (use '' or 'study')")
  c = ml_collections.ConfigDict()
  c.job = "prm_jax.prm.train:prm_train"
  c.seed = 0
  c.model = sibling(__file__, "mode_synthetic").get_config().model   # without a checkpoint
  # pretrained: a mode_jax.pretrained name (e.g. gemma3_270m) as the backbone instead of hf_path
  c.checkpoint = ml_collections.ConfigDict(dict(hf_path="runs/policy/policy_model",
                                                pretrained=""))
  c.vocab = ml_collections.ConfigDict(dict(kind="bytes", path=""))
  c.adapter = ml_collections.ConfigDict(dict(method="none"))
  c.prm = ml_collections.ConfigDict(dict(
      objective="soft",            # soft | hard | pairwise | orm
      head="scalar",               # scalar | tokens (the LM's logit of tokens[0] minus
      tokens=("+", "-"),           #   tokens[1] at the step end: Math-Shepherd; tied LMs)
      threshold=0.0,               # hard / orm: label 1[MC > threshold]
      weighting="occurrences",     # occurrences (records' counts) | uniform (one per record)
      labels="mc",                 # mc | hard@TAU | exact | consensus (prm/label_sources.py)
      judge="arithmetic",          # exact / consensus: the judge (the env's exact checker),
                                   # or "llm": an LLM critic on judge_llm's server
      judge_llm=dict(url="", model="", samples=1, max_tokens=2048, temperature=0.0),
      records=("runs/omegaprm_jax/records.jsonl",),
      outcomes="",                 # orm: JSONL {"question", "solution", "correct"}
      template=TEMPLATE, dev_fraction=0.1, max_len=256, max_positions=1024, dev_batches=4))
  c.train = blocks.train_block(steps=300, lr=1e-3, batch=16, log_every=50, eval_every=100)
  c.mesh = blocks.mesh_block()
  # python -m prm_jax.pipeline --config=configs/prm_arith.py --workdir=runs/prm_pipeline
  c.pipeline = ml_collections.ConfigDict(dict(
      policy_checkpoint="",        # set to skip policy training (e.g. runs/policy/policy_model)
      policy_steps=1000, train_questions=240, train_seed=7, search_limit=100,
      record_root_rollouts=True,   # label the 32 graded root rollouts too (both methods)
      orm_samples=8, prm_steps=400, eval_questions=100, eval_seed=11, max_n=64,
      n_boot=100, compare_n=(16,),              # paired differences at these N
      label_sources=("exact", "consensus"),   # extra PRMs on the OmegaPRM records
      prm_adapters=("lora",),                  # + PRMs on the frozen policy (lora | mode)
      beam_width=2, beam_expand=4))            # step-level beam search (0: skip)
  if arg == "study":
    c.pipeline.update(dict(eval_questions=500, eval_seed=13, compare_n=(16, 64), n_boot=1000))
  return c
