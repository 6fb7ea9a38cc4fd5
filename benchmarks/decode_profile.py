"""Where a decode step of Gemma 3 270M spends its time on this machine: the whole step, the
layers alone, the tied 262k x 640 head in float32 / bfloat16 / int8 weights converted in the
matmul, and the per-step ops over the vocabulary the sampler may run:

    python -m benchmarks.decode_profile [--batch=8]

Each is one jitted call on a KV cache of 128 slots (median of 10 after a warm-up).
"""

from __future__ import annotations

import time

from absl import flags
import numpy as np

from mode_jax import cli


def time_ms(fn, *args, n: int = 10) -> float:
  """Median milliseconds of `fn(*args)` (jitted, blocked on) over `n` calls after a warm-up."""
  import jax
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(n):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times)) * 1e3


def main(argv=None):
  fv = flags.FlagValues()
  flags.DEFINE_integer("batch", 8, "", flag_values=fv)
  args = cli.parse_argv(fv, argv)
  import jax
  import jax.numpy as jnp

  from mode_jax import pretrained
  from mode_jax.model import Transformer, sampling
  from mode_jax.model.kv_cache import KVCache

  cfg, params, _ = pretrained.load("gemma3_270m")
  b = args.batch
  model = Transformer(cfg)
  cache = KVCache.init(cfg, b, 128)
  tok = jnp.ones((b, 1), jnp.int32)
  step = jax.jit(lambda p, t, c: model.apply({"params": p}, t, cache=c))
  layers = jax.jit(lambda p, t, c: model.apply({"params": p}, t, cache=c, head=False))
  rows = {"decode step (layers + head)": time_ms(step, params, tok, cache),
          "layers only": time_ms(layers, params, tok, cache)}
  w = params["embedder"]["embedding"]
  h = jnp.asarray(np.random.RandomState(0).randn(b, cfg.embed_dim), jnp.float32)
  rows["head float32"] = time_ms(jax.jit(lambda h, w: jnp.einsum("be,ve->bv", h, w)), h, w)
  rows["head bfloat16"] = time_ms(jax.jit(lambda h, w: jnp.einsum(
      "be,ve->bv", h.astype(jnp.bfloat16), w, preferred_element_type=jnp.float32)), h,
      w.astype(jnp.bfloat16))
  scale = jnp.max(jnp.abs(w), axis=1) / 127
  q = jnp.round(w / scale[:, None]).astype(jnp.int8)
  rows["head int8 (converted in the matmul)"] = time_ms(jax.jit(
      lambda h, q, s: jnp.einsum("be,ve->bv", h, q.astype(jnp.float32)) * s), h, q, scale)
  x = step(params, tok, cache)[0][:, -1, :]
  rows["log_softmax over the vocabulary"] = time_ms(jax.jit(lambda x: jax.nn.log_softmax(x, -1)), x)
  rows["inverse-CDF sample (exp + cumsum)"] = time_ms(jax.jit(
      lambda x: sampling.sample_inverse_cdf(x, jnp.full((b,), 0.5))), x)
  rows["top-p 0.95 filter (these logits)"] = time_ms(jax.jit(lambda x: sampling.filter_logits(
      x, 1.0, 0, 0.95, use_top_k=False, use_top_p=True)), x)
  rows["top-p 0.95 by bisection"] = time_ms(jax.jit(lambda x: sampling.filter_logits_bisect(
      x, 0, 0.95, use_top_k=False, use_top_p=True)), x)
  print(f"Gemma 3 270M decode step at batch {b}, float32, jax {jax.__version__} on "
        f"{jax.devices()[0].platform}")
  for k, v in rows.items():
    print(f"{k:40s} {v:8.1f} ms")


if __name__ == "__main__":
  main()
