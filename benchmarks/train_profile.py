"""Where a LoRA training step of Gemma 3 270M spends its time on this machine, and how far it is
from the matmul bound:

    python -m benchmarks.train_profile [--batch=4] [--seq=256] [--loss_tokens=64]

The setting of `benchmarks.lora_training` (float32, LoRA r8 on q, k, v, o, loss and head on the
last `loss_tokens` positions of each row). Timed, each one jitted call (median of 4 after a
warm-up): the layers' forward alone; the forward with head + loss; the gradient of the layers
alone (a fixed random cotangent on their output); the head + loss forward and its gradient
(`losses.head_cross_entropy`); the gradient of the whole loss; the train step (gradient +
AdamW). Printed beside them: each part's matmul FLOPs (2 x multiply-adds of the projections,
the attention scores and values, and the head; the backward of the frozen base only needs the
activation gradients: the same FLOPs again) and this machine's float32 and bfloat16 matmul
rates on the step's own shapes (bfloat16 inputs with a float32 output, and bfloat16 in and out),
so the step's floor is FLOPs / rate.
"""

from __future__ import annotations

from absl import flags

from benchmarks.decode_profile import time_ms
from mode_jax import cli


def _rate(m: int, k: int, n: int, dtype, out=None) -> float:
  """FLOP/s of a jitted [m, k] x [k, n] matmul, inputs in `dtype`, output in `out` (default
  float32: float32 accumulation)."""
  import jax
  import jax.numpy as jnp
  a, b = jnp.ones((m, k), dtype), jnp.ones((k, n), dtype)
  f = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=out or jnp.float32))
  return 2 * m * k * n / (time_ms(f, a, b, n=10) / 1e3)


def layer_flops(cfg, tokens: int, seq: int) -> float:
  """Forward matmul FLOPs of the decoder layers for `tokens` tokens in rows of `seq`."""
  e, h, k, d, f = cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.mlp_dim
  proj = e * h * d * 2 + e * k * d * 2 + 3 * e * f          # q, o; k, v; gate, up, down
  attn = 2 * h * d * seq                                     # scores + values per token
  return 2.0 * tokens * (proj + attn) * cfg.num_layers


def main(argv=None):
  fv = flags.FlagValues()
  for name, default in (("batch", 4), ("seq", 256), ("loss_tokens", 64)):
    flags.DEFINE_integer(name, default, "", flag_values=fv)
  flags.DEFINE_string("model", "gemma3_270m", "a mode_jax.pretrained name with a tied head",
                      flag_values=fv)
  args = cli.parse_argv(fv, argv)
  import jax
  import jax.numpy as jnp
  import optax

  from benchmarks.lora_training import lora_setup
  from mode_jax.adapters import combine
  from mode_jax.model import Transformer
  from mode_jax.train import losses, step as st

  cfg, base, adapter, acfg, batch = lora_setup(args)
  targets = batch["decoder_target_tokens"]
  model = Transformer(cfg, acfg)
  k = args.loss_tokens
  hidden = lambda ad, b: st.forward(model, combine(b, ad), batch, head=False)[0]
  loss = lambda ad, b: st.loss_fn(ad, b, batch, model, False, loss_positions=k)[0]
  cot = jax.random.normal(jax.random.key(1), (args.batch, args.seq, cfg.embed_dim))
  head = base["embedder"]["embedding"]
  h = jax.random.normal(jax.random.key(2), (args.batch, k, cfg.embed_dim))
  tg, w = jnp.asarray(targets[:, -k - 1:-1]), jnp.ones((args.batch, k))
  xent = lambda h, head: losses.head_cross_entropy(h, head, tg, w, tied=True)[0]
  tx = optax.adamw(1e-4, weight_decay=0.0)
  train = jax.jit(st.make_train_step(model, tx, lambda s: 1e-4, full=False, loss_positions=k))
  state = st.TrainState(step=jnp.int32(0), params=adapter, opt_state=tx.init(adapter))

  n_tok, n_loss = args.batch * args.seq, args.batch * k
  f_layers = layer_flops(cfg, n_tok, args.seq)
  f_head = 2.0 * n_loss * cfg.vocab_size * cfg.embed_dim
  def ms(fn, *a):
    return time_ms(fn, *a, n=4)
  rows = [
      ("layers forward", ms(jax.jit(hidden), adapter, base), f_layers),
      ("forward + head + loss", ms(jax.jit(loss), adapter, base), f_layers + f_head),
      ("layers forward + backward", ms(jax.jit(jax.grad(
          lambda ad, b: jnp.sum(hidden(ad, b) * cot))), adapter, base), 2 * f_layers),
      ("head + loss forward", ms(jax.jit(xent), h, head), f_head),
      ("head + loss forward + backward", ms(jax.jit(jax.grad(xent)), h, head), 2 * f_head),
      ("whole loss forward + backward", ms(jax.jit(jax.grad(loss)), adapter, base),
       2 * (f_layers + f_head)),
      ("train step (+ AdamW)", ms(train, state, base, batch), 2 * (f_layers + f_head)),
  ]
  r32 = _rate(n_tok, cfg.embed_dim, cfg.mlp_dim, jnp.float32)
  r16 = _rate(n_tok, cfg.embed_dim, cfg.mlp_dim, jnp.bfloat16)
  r16_out = _rate(n_tok, cfg.embed_dim, cfg.mlp_dim, jnp.bfloat16, jnp.bfloat16)
  print(f"{args.model} LoRA r8 q,k,v,o float32, batch {args.batch} x {args.seq}, head + loss on "
        f"{k} positions per row; matmul rate on [{n_tok}, {cfg.embed_dim}] x [{cfg.embed_dim}, "
        f"{cfg.mlp_dim}]: float32 {r32 / 1e9:.0f} GFLOP/s, bfloat16 inputs (float32 "
        f"output) {r16 / 1e9:.0f} GFLOP/s, bfloat16 in and out (the model's dtype=bfloat16) "
        f"{r16_out / 1e9:.0f} GFLOP/s")
  for name, ms, flop in rows:
    print(f"{name:32s} {ms:8.0f} ms  {flop / 1e9:6.0f} GFLOP  {flop / ms / 1e6:5.0f} GFLOP/s  "
          f"float32 floor {flop / r32 * 1e3:6.0f} ms ({flop / r32 * 1e3 / ms * 100:3.0f}%)")


if __name__ == "__main__":
  main()
