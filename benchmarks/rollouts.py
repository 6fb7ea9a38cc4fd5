"""Prefix sharing on a real OmegaPRM collection: Gemma 3 270M (in-process, `mode_jax.serve`)
as the policy on arithmetic questions, the same collection with and without prefix sharing:

    python -m benchmarks.rollouts [--questions=3] [--root_rollouts=8] [--max_tokens=48] \
        [--shots=3]

OmegaPRM's k rollouts from one state (and the root rollouts of a question) are n samples of
one prompt: with sharing the sampler prefills that prompt once and broadcasts its KV cache.
Printed per setting: rollouts, prompt tokens prefilled, prefill tokens per rollout, generated
tokens, wall seconds per rollout, and whether the two collections wrote the same records
(they must: sharing changes no sample). The base model is not trained on the task: it gets
`--shots` worked problems before the question (a long shared prompt, as few-shot policies
have), two additions or subtractions of numbers below 10 (`--max_ops`); the labels are not the point here, the policy's
cost is.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from absl import flags

from mode_jax import cli


def main(argv=None):
  fv = flags.FlagValues()
  for name, default in (("questions", 3), ("root_rollouts", 8), ("k", 4), ("search_limit", 3),
                        ("max_tokens", 48), ("shots", 3), ("max_ops", 2)):
    flags.DEFINE_integer(name, default, "", flag_values=fv)
  flags.DEFINE_string("model", "gemma3_270m", "any mode_jax.serve.load name", flag_values=fv)
  args = cli.parse_argv(fv, argv)

  from configs import omegaprm_arith
  from mode_jax import serve
  from prm_jax import collect
  from prm_jax.policy.base import TemplatePolicy

  model = serve.load(args.model, max_batch=128)
  c = omegaprm_arith.get_config()
  c.questions.num = args.questions
  # two additions / subtractions of small numbers: problems the few-shot base model sometimes
  # solves, so that the search goes past the root (state rollouts share question + prefix)
  c.questions.arith.update(dict(min_ops=2, max_ops=args.max_ops, ops=("+", "-"), max_start=9,
                                max_operand=9, max_value=30))
  c.search.update(dict(search_limit=args.search_limit, root_rollouts=args.root_rollouts,
                       k=args.k, filter_root=False))
  c.policy.max_new_tokens = args.max_tokens
  if args.shots:        # worked examples before the question (the base model is not tuned)
    from prm_jax.envs import arithmetic
    ex = arithmetic.make_problems(args.shots, arithmetic.ArithmeticConfig(
        **dict(c.questions.arith)), seed=c.questions.seed + 7919)
    c.policy.template = "".join(f"Question: {p.question}\nAnswer:\n{p.solution}\n\n"
                                for p in ex) + c.policy.template
  policy = TemplatePolicy(model, c.policy.template, collect.policy_sampling(c.policy))
  results = {}
  for share in (True, False):
    model.share_prefix = share
    for _ in range(2):          # the first run compiles the programs; the second is timed
      with tempfile.TemporaryDirectory() as d:
        before_p, before_g = model.prefill_tokens, model.generated_tokens
        t0 = time.perf_counter()
        stats = collect.collect(c, d, log=lambda *_: None, policy=policy)
        dt = time.perf_counter() - t0
        recs = open(os.path.join(d, "records.jsonl")).read()
      results[share] = dict(rollouts=stats["rollouts"], prefill=model.prefill_tokens - before_p,
                            generated=model.generated_tokens - before_g, seconds=dt, recs=recs)
  print(f"{args.model}: {args.questions} questions, root rollouts {args.root_rollouts}, k "
        f"{args.k}, search limit {args.search_limit}, {args.max_tokens} new tokens at most, "
        f"{args.shots}-shot prompts")
  for share, r in results.items():
    n = max(1, r["rollouts"])
    print(f"prefix sharing {'on ' if share else 'off'}: {r['rollouts']} rollouts, "
          f"{r['prefill']} prompt tokens prefilled ({r['prefill'] / n:.1f} per rollout), "
          f"{r['generated']} generated, {r['seconds']:.1f} s ({r['seconds'] / n * 1e3:.0f} ms "
          f"per rollout)")
  on, off = results[True], results[False]
  print(f"prefill tokens x{off['prefill'] / max(1, on['prefill']):.2f} fewer, wall "
        f"x{off['seconds'] / on['seconds']:.2f} faster; same records: {on['recs'] == off['recs']}")
  print(json.dumps({str(k): {kk: v for kk, v in r.items() if kk != "recs"}
                    for k, r in results.items()}))


if __name__ == "__main__":
  main()
