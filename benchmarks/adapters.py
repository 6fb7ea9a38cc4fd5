"""Forward+backward time of one transformer block with each adapter (frozen base, adapters
trainable), all in one run:

    python -m benchmarks.adapters [--tokens 1024] [--reps 7] [--dtype float32]

The block is `DecoderLayer` at hidden 1024, intermediate 4096, 8 heads (head_dim 128), adapters
on q, k, v, o. Each row jits `grad(sum(block(x)^2))` with respect to x and the adapter params
(no gradient for the frozen weights, as in training), times the median of `--reps` runs after
a warm-up (rows interleaved), and prints the ratio to the block without adapters, plus the
adapter's share of parameters and of forward FLOPs computed from the shapes.
"""

from __future__ import annotations

import time

from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mode_jax import cli
from mode_jax.adapters import params as adapter_params
from mode_jax.adapters.config import AdapterConfig
from mode_jax.model.config import ModelConfig
from mode_jax.model.layers import DecoderLayer, attention_mask, rope_table

ROWS = [
    ("no adapter", None),
    ("LoRA 64", AdapterConfig("lora", rank=64)),
    ("MoLoRA 16x4", AdapterConfig("molora", experts=16, rank=4)),
    ("MoLoRA-SD 16x4", AdapterConfig("molora_sd", experts=16, rank=4)),
    ("MoDE 16x4", AdapterConfig("mode", experts=16, rank=4)),
    ("MoDE 6x4", AdapterConfig("mode", experts=6, rank=4)),
    ("MoDE 16x4 naive loop", AdapterConfig("mode", experts=16, rank=4, impl="naive")),
]


def block_config(dtype: str) -> ModelConfig:
  return ModelConfig(vocab_size=256, embed_dim=1024, num_layers=1, num_heads=8, num_kv_heads=8,
                     head_dim=128, mlp_dim=4096, dtype=dtype, param_dtype="float32")


def block_flops(cfg: ModelConfig, t: int) -> float:
  """Forward FLOPs of the frozen block (projections + attention scores/values, no causal skip)."""
  e, f, hd = cfg.embed_dim, cfg.mlp_dim, cfg.num_heads * cfg.head_dim
  kv = cfg.num_kv_heads * cfg.head_dim
  proj = 2 * t * (e * hd * 2 + e * kv * 2 + 3 * e * f)
  return proj + 4 * t * t * hd


def adapter_flops(cfg: ModelConfig, acfg: AdapterConfig, t: int) -> float:
  """Forward FLOPs of the adapter terms: x A, router, the weighted product, z B."""
  total = 0.0
  for name in acfg.targets:
    p, q = adapter_params.matrix_dims(cfg, name)
    m, r = acfg.experts, acfg.rank
    down = 2 * t * p * r * (m if acfg.method == "molora" else 1)
    route = 2 * t * p * m * acfg.num_blocks if acfg.routed else 0
    up = 2 * t * (m if acfg.routed else 1) * r * q
    total += down + route + up + (t * m * r if acfg.routed else 0)
  return total


def build_row(cfg: ModelConfig, acfg, tokens: int, seed: int = 0):
  """A zero-argument callable running one jitted fwd+bwd of the block (compiled and warmed)."""
  layer = DecoderLayer(cfg, acfg)
  rng = np.random.RandomState(seed)
  x = jnp.asarray(rng.randn(1, tokens, cfg.embed_dim), cfg.compute_dtype)
  pos = jnp.arange(tokens, dtype=jnp.int32)[None]
  rope = rope_table(cfg, pos, cfg.compute_dtype)
  mask = attention_mask(tokens, None)
  params = nn.meta.unbox(layer.init(jax.random.key(seed), x, rope, mask, None, None, None)
                         ["params"])
  # Non-zero up-projections so the adapter path is not trivially zero.
  params = jax.tree_util.tree_map_with_path(
      lambda p, v: v + 0.01 if adapter_params.is_adapter_path(p) else v, params)
  base, ad = adapter_params.split(params)

  def loss(x, ad):
    y, _ = layer.apply({"params": adapter_params.combine(base, ad) if ad else base},
                       x, rope, mask, None, None, None)
    return jnp.sum(jnp.square(y.astype(jnp.float32)))

  step = jax.jit(jax.grad(loss, argnums=(0, 1)))
  run = lambda: jax.block_until_ready(step(x, ad))
  run()
  run()
  return run


def time_rows(runs: list, reps: int) -> list[float]:
  """Median seconds per row. Rows are timed round-robin so machine drift hits all alike, and
  each timed call follows an untimed call of the same row: otherwise a row pays for the memory
  the previous row left behind (the naive row's intermediates cost the next row ~25%)."""
  times = [[] for _ in runs]
  for _ in range(reps):
    for i, run in enumerate(runs):
      run()
      t0 = time.perf_counter()
      run()
      times[i].append(time.perf_counter() - t0)
  return [float(np.median(t)) for t in times]


def main(argv=None):
  ap = flags.FlagValues()
  flags.DEFINE_integer("tokens", 1024, "", flag_values=ap)
  flags.DEFINE_integer("reps", 7, "", flag_values=ap)
  flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "", flag_values=ap)
  args = cli.parse_argv(ap, argv)
  cfg = block_config(args.dtype)
  print(f"device: {jax.devices()[0].platform} x{jax.device_count()}  block: hidden "
        f"{cfg.embed_dim}, mlp {cfg.mlp_dim}, {cfg.num_heads} heads, {args.tokens} tokens, "
        f"{args.dtype}, fwd+bwd (grads wrt x and adapter params), median of {args.reps}")
  print(f"{'adapter':24s} {'ms':>9s} {'x block':>8s} {'+% params':>10s} {'+% fwd FLOPs':>13s}")
  base_params = adapter_params.count_leaves(jax.eval_shape(
      lambda: DecoderLayer(cfg).init(jax.random.key(0), jnp.zeros((1, 8, cfg.embed_dim)),
                                     rope_table(cfg, jnp.zeros((1, 8), jnp.int32), jnp.float32),
                                     attention_mask(8, None), None, None, None)))
  secs = time_rows([build_row(cfg, acfg, args.tokens) for _, acfg in ROWS], args.reps)
  base_ms = 1e3 * secs[0]
  for (name, acfg), sec in zip(ROWS, secs):
    ms = 1e3 * sec
    if acfg is None:
      extra_p = extra_f = "-"
    else:
      extra_p = f"{100 * adapter_params.count_params(cfg, acfg) / base_params:.2f}"
      extra_f = f"{100 * adapter_flops(cfg, acfg, args.tokens) / block_flops(cfg, args.tokens):.1f}"
    print(f"{name:24s} {ms:9.1f} {ms / base_ms:8.3f} {extra_p:>10s} {extra_f:>13s}", flush=True)


if __name__ == "__main__":
  main()
