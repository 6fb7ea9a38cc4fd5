"""Top-k / top-p filtering of a Gemma-sized vocabulary: the sampler's filter
(`sampling.filter_logits`: the best 1,024 logits by `lax.top_k`, falling back to a sort-free
bisection when they do not hold the cutoff) and its bisection alone (`filter_logits_bisect`)
vs the sorted-cumsum definition (`filter_logits_sorted`, what transformers' TopPLogitsWarper
and most JAX samplers do: a full sort per row per step).

    python -m benchmarks.filters [--batch 8] [--vocab 262144] [--repeats 5]

Two kinds of rows: "peaked" (Zipf-like log-probabilities, exponent 1.1, shuffled: the shape of
a language model's next-token distribution, where the 1,024 candidates hold the nucleus) and
"flat" (standard normal x 3: the candidates hold less than 0.95 of the mass, so the filter
falls back to bisection). Prints milliseconds per jitted call (median of --repeats after one
warm-up) for top-p 0.95 alone and top-k 50 + top-p 0.95.
"""

from __future__ import annotations

import json
import statistics
import time

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from mode_jax import cli
from mode_jax.model import sampling


def _ms(fn, x, repeats):
  fn(x).block_until_ready()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn(x).block_until_ready()
    times.append(time.perf_counter() - t0)
  return 1e3 * statistics.median(times)


def main(argv=None):
  ap = flags.FlagValues()
  flags.DEFINE_integer("batch", 8, "", flag_values=ap)
  flags.DEFINE_integer("vocab", 262_144, "", flag_values=ap)
  flags.DEFINE_integer("repeats", 5, "", flag_values=ap)
  args = cli.parse_argv(ap, argv)
  rs = np.random.RandomState(0)
  zipf = -1.1 * np.log(np.arange(1, args.vocab + 1, dtype=np.float64))
  rows = {"peaked": np.stack([rs.permutation(zipf) for _ in range(args.batch)]),
          "flat": rs.randn(args.batch, args.vocab) * 3}
  out = {}
  for kind, x in rows.items():
    x = jnp.asarray(x.astype(np.float32))
    for label, k, p in (("top_p", 0, 0.95), ("top_k_top_p", 50, 0.95)):
      for name, f in (("filter", sampling.filter_logits),
                      ("bisection", lambda x, t, k, p, **kw: sampling.filter_logits_bisect(
                          x / t, k, p, **kw)),
                      ("sort", sampling.filter_logits_sorted)):
        fn = jax.jit(lambda x, f=f, k=k, p=p: f(x, 1.0, k, p, use_top_k=k > 0, use_top_p=True))
        out[f"{kind}_{label}_{name}_ms"] = _ms(fn, x, args.repeats)
  print(json.dumps(dict(batch=args.batch, vocab=args.vocab, device=jax.devices()[0].platform,
                        **{k: round(v, 2) for k, v in out.items()})))


if __name__ == "__main__":
  main()
