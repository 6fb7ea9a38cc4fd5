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

PRE-REGISTERED STUDY V2 (`--config=configs/prm_arith.py:study2`, design fixed 2026-12-06 and
committed before any run of it): does a real backbone make the PRM useful for verification?
- Policy and labels: the tiny SFT policy (configs/policy_arith.py, 1,000 steps, trained in the
  workdir) and its OmegaPRM and Math-Shepherd collections on v1's 240 training questions (seed
  7, same budget). Tiny-policy labels with a Gemma PRM, not a Gemma policy's labels: v1's
  OmegaPRM collection made 33,992 rollouts; a Gemma 3 270M forward costs about 28x the tiny
  one's here (learnability study: 282 s vs 10 s to score 1,200 solutions), so a Gemma-policy
  collection would take most of a day on this CPU.
- PRMs on the OmegaPRM MC labels (soft objective, occurrence-weighted, best-dev checkpoint):
  omegaprm (v1's tiny PRM: the policy fully fine-tuned, 400 steps x 16), omegaprm_gemma_tokens
  (Gemma 3 270M + LoRA rank 8 on q/k/v/o, the LM's own "+" / "-" logits as the step score:
  Math-Shepherd's reading), omegaprm_gemma_scalar (the same with a scalar head); Gemma PRMs
  300 steps x 4 packed rows of 256 tokens at lr 1e-3 (the learnability study's recipe, 25%
  more steps for the larger record set; set from the CPU budget, not tuned on held-out data).
  Also trained, secondary: math_shepherd, orm, omegaprm_exact (the checker's labels).
- Held-out: 500 problems of eval_seed 19 (never used before), none among the policy's SFT
  problems, the collection questions or each other (`pipeline.heldout_problems`), 16 samples
  each at temperature 1. Step metrics on the test half (problems 250-499: 4,000 solutions).
- Primary (three intervals, 95% each, NOT corrected for multiplicity; read at 98.3% per
  interval for a family-wise 95%):
  P1a step AUROC of omegaprm_gemma_tokens minus omegaprm, paired bootstrap over test problems;
  P1b the same for the first-error AUROC within position (step AUROC is confounded by position:
      labels are 1 until the first error, so the step index alone scored 0.68 in the
      learnability study; position alone scores 0.5 here);
  P2  PRM-weighted vote with omegaprm_gemma_tokens, min aggregation (a solution is as good as
      its worst step; unlike product it does not fall with the number of steps, the bias v1's
      best-of-N breakdown showed), minus majority vote at N = 16, paired bootstrap over the 500
      problems (1,000 replicates).
- Secondary: the scalar Gemma PRM in P1a/P1b/P2 and against the tokens one; product
  aggregation; every PRM's ProcessBench F1 (official threshold 0.5 and tuned); the ORM,
  Math-Shepherd and exact-label PRMs; pass@N and the oracle process verifier as ceilings.
  v1's figures at N = 16 restated on a set that is really held out (v1's leaked: 150 of its
  500 problems were SFT problems): majority vote, the policy-likelihood verifier (v1: 91.1%
  best-of-16, the figure the leak most likely inflated), the tiny OmegaPRM / Math-Shepherd PRMs.
- Smallest detectable effect: v1's paired intervals at N = 16 on 500 problems were about +-2
  points wide, so a gain under about 2 points of accuracy is reported as undetected, not as
  absent; step AUROC differences on 4,000 test solutions are expected to be resolved to about
  +-0.01 (read off the report, not assumed).
- Not in the design: beam search, the frozen-policy LoRA PRM, the consensus labels (v1 ran
  them; they cost time and answer nothing new here).

The backbone starts from the tiny policy (runs/policy/policy_model, from
configs/policy_arith.py) and the records default to runs/omegaprm_jax/records.jsonl
(`python -m prm_jax.collect --config=configs/omegaprm_arith.py:jax`).
"""

import ml_collections

from mode_jax.config_files import sibling
from prm_jax.policy.sft import TEMPLATE

blocks = sibling(__file__, "blocks")
GEMMA_LORA = dict(method="lora", experts=1, rank=8, targets=("q", "k", "v", "o"))


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """"": the pipeline as measured so far; "study" / "study2": the pre-registered verification
  studies (module docstring)."""
  if arg not in ("", "study", "study2"):
    raise ValueError(f"prm_arith: unknown variant {arg!r} (use '', 'study' or 'study2')")
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
      beam_width=2, beam_expand=4,             # step-level beam search (0: skip)
      # PRMs on another backbone ({name: {backbone, head, adapter, labels, steps, batch, lr}},
      # `pipeline.entry_config`), their vote aggregations compared with majority, and PRM
      # pairs whose step AUROCs are differenced on the same steps
      pretrained_prms={}, paired_aggregations=("product",), step_pairs=()))
  if arg == "study":
    c.pipeline.update(dict(eval_questions=500, eval_seed=13, compare_n=(16, 64), n_boot=1000))
  if arg == "study2":
    gemma = dict(backbone="gemma3_270m", adapter=GEMMA_LORA, labels="mc", steps=300, batch=4,
                 lr=1e-3)
    c.pipeline.update(dict(
        eval_questions=500, eval_seed=19, max_n=16, compare_n=(16,), n_boot=1000,
        label_sources=("exact",), prm_adapters=(), beam_width=0,
        paired_aggregations=("min", "product"),
        pretrained_prms=dict(gemma_tokens=dict(gemma, head="tokens"),
                             gemma_scalar=dict(gemma, head="scalar")),
        step_pairs=(("omegaprm_gemma_tokens", "omegaprm"), ("omegaprm_gemma_scalar", "omegaprm"),
                    ("omegaprm_gemma_tokens", "omegaprm_gemma_scalar"))))
  return c
