"""Is the PRM learnable, and is data the bottleneck? (`prm_jax.learnability`)

    python -m prm_jax.learnability --config=configs/prm_learnability.py \
        --workdir=runs/prm_learnability [--config.learn.policy=runs/policy/policy_model]

PRE-REGISTERED DESIGN (fixed 2026-12-06 and committed before any run of it):
- Policy: the tiny SFT policy of configs/policy_arith.py (1,000 steps; the study's policy and
  the tiny PRMs' backbone). Labels: the arithmetic checker's exact step labels on its sampled
  solutions (temperature 1, the pipeline's sampling), 8 solutions per training question.
- Training questions: 2,400 distinct questions of the pipeline's collection generator (seed
  23); the 1x set is their first 240 (the study's 240 collection questions' count), the 10x set
  all 2,400 (nested). Held-out: 300 problems of eval_seed 17 (`pipeline.heldout_problems`:
  none among the policy's SFT problems, the pipeline's collection questions or these 2,400),
  4 samples each; metrics on the test half (problems 150-299), thresholds tuned on the first.
- PRMs (soft objective = BCE on the 0/1 exact labels, best-dev checkpoint):
  tiny_240 (tiny policy backbone fully fine-tuned, 400 steps x 16: the study's PRM recipe),
  tiny_240_long (the same data, 1,200 steps: compute-matched control for tiny_2400),
  tiny_2400 (10x data, 1,200 steps x 16),
  gemma_scalar_240 (Gemma 3 270M, LoRA rank 8 on q/k/v/o + scalar head, 1x data),
  gemma_tokens_240 (the same with the LM's own "+" / "-" logits as the step score).
  Gemma PRMs: 240 steps x 4 packed rows of 256 tokens (about 2 epochs; set from the CPU
  budget, not tuned on the test half).
- Primary 1, learnability: step AUROC of gemma_scalar_240 minus tiny_240, paired bootstrap over
  test problems (1,000 replicates, 95%). "Clearly beats" = the interval lies above 0.
- Primary 2, data volume: tiny_2400 minus tiny_240_long (same steps, 10x the data); data is a
  bottleneck for the tiny backbone if the interval lies above 0.
- Secondary: gemma_tokens_240 minus gemma_scalar_240; tiny_2400 minus tiny_240; every PRM's
  ProcessBench F1 by the official protocol (threshold 0.5) and with the tuned threshold.
- Smallest effect: with about 450 test solutions the AUROC differences' intervals are expected
  to be about +-0.03 to 0.05 wide (to be read off the report, not assumed); smaller effects
  are reported as undetected, not as absent.
- Context only (other data): the study's tiny PRMs scored step AUROC 0.55-0.62 on their own
  held-out set (OmegaPRM / Math-Shepherd records; studies/prm_study).

POST-HOC (`:posthoc`, added 2026-12-06 after seeing the pre-registered Gemma scalar PRM's
training curve: its loss jumped around at lr 1e-3 and improved only as the rate decayed): the
same Gemma PRMs at lr 2e-4, same data and steps. Exploratory, not part of the pre-registered
comparisons; reported beside them and marked.
"""

import ml_collections

from mode_jax.config_files import sibling

LORA = dict(method="lora", experts=1, rank=8, targets=("q", "k", "v", "o"))


def _prm(size, backbone, head="scalar", adapter=None, steps=400, batch=16, lr=1e-3):
  return dict(size=size, backbone=backbone, head=head, adapter=adapter or dict(method="none"),
              steps=steps, batch=batch, lr=lr)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """"": the pre-registered design; "posthoc": plus the post-hoc Gemma PRMs (module doc)."""
  if arg not in ("", "posthoc"):
    raise ValueError(f"prm_learnability: unknown variant {arg!r} (use '' or 'posthoc')")
  c = sibling(__file__, "prm_arith").get_config()
  c.job = "prm_jax.learnability:run"
  c.pipeline.update(dict(eval_questions=300, eval_seed=17))
  c.learn = ml_collections.ConfigDict(dict(
      policy="runs/policy/policy_model",
      train_questions=2400, train_seed=23, train_samples=8, sizes=(240, 2400),
      eval_samples=4, sample_seed=5, n_boot=1000,
      prms=dict(
          tiny_240=_prm(240, "policy"),
          tiny_240_long=_prm(240, "policy", steps=1200),
          tiny_2400=_prm(2400, "policy", steps=1200),
          gemma_scalar_240=_prm(240, "gemma3_270m", "scalar", LORA, steps=240, batch=4),
          gemma_tokens_240=_prm(240, "gemma3_270m", "tokens", LORA, steps=240, batch=4)),
      compare=("gemma_scalar_240-tiny_240", "tiny_2400-tiny_240_long",
               "gemma_tokens_240-gemma_scalar_240", "gemma_tokens_240-tiny_240",
               "tiny_2400-tiny_240")))
  if arg == "posthoc":
    c.learn.prms.update(dict(
        posthoc_gemma_scalar_240_lr2e4=_prm(240, "gemma3_270m", "scalar", LORA, steps=240,
                                            batch=4, lr=2e-4)))
    c.learn.compare = tuple(c.learn.compare) + ("posthoc_gemma_scalar_240_lr2e4-tiny_240",
                                                "posthoc_gemma_scalar_240_lr2e4-gemma_scalar_240")
  return c
