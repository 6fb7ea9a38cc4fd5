"""Fused adapted projection vs XLA, at Gemma-2B projection shapes:

    python -m benchmarks.kernels                  # on a GPU / TPU
    python -m benchmarks.kernels --small --interpret   # CPU smoke run (not a timing)

For every (P, Q) in {(2048, 2048) q/o, (2048, 16384) gate/up, (16384, 2048) down} and tokens
in {1, 16, 8192}, and for LoRA r=64 and MoDE 16x4 (p = 1), prints forward and forward+backward
time (median of --reps after a warm-up), achieved TFLOP/s and GB/s for:
  base   x W0 alone (the floor);
  xla    x W0 + the adapter term as the `impl="xla"` dense ops (two skinny GEMMs, the gate
         product, one GEMM; XLA fuses what it can);
  pallas `adapter_matmul` (one pass over x and W0);
and the ratios xla / pallas (target >= 1.3 at training shapes) and pallas / base - 1 (the
adapter overhead, target <= 8%). GB/s counts the bytes each call must move at least (x, W0, A,
B, gates, y), so at decode shapes it reads as the fraction of HBM bandwidth reached (target
>= 80%). fwd+bwd: value and gradients for x and the adapter params (W0 frozen), as in
training (for "base" the adapter params are unused, so it is x W0 and dx only).
Imports only jax / numpy (runs on a bare accelerator machine).
"""

from __future__ import annotations

import json
import time

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from mode_jax import cli
from mode_jax.kernels import adapter_matmul as K

SHAPES = [(2048, 2048), (2048, 16384), (16384, 2048)]
TOKENS = [1, 16, 8192]
ADAPTERS = [("LoRA 64", 1, 64, None), ("MoDE 16x4", 16, 4, 4)]   # (name, m, r, nb)


def xla_adapted(x, w0, a, b, gates, *, experts, scale=1.0):
  """The dense-op adapter path of `adapters.Adapter` (impl="xla") for a 2-D projection."""
  y = jnp.dot(x, w0, preferred_element_type=jnp.float32)
  h = jnp.dot(x, a, preferred_element_type=jnp.float32)
  if gates is not None:
    nb, m = gates.shape[-2:]
    hb = h.reshape(-1, 1, nb, h.shape[-1] // nb)
    z = (jnp.swapaxes(gates, -1, -2)[..., None] * hb).reshape(h.shape[0], -1)
  else:
    z = h
  y = y + scale * jnp.dot(z.astype(x.dtype), b, preferred_element_type=jnp.float32)
  return y.astype(x.dtype)


def _time(fn, args, reps):
  out = fn(*args)
  jax.block_until_ready(out)
  ts = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    ts.append(time.perf_counter() - t0)
  return float(np.median(ts))


def run(shapes, tokens, reps, dtype, interpret, with_pallas=True):
  rows = []
  dt = jnp.dtype(dtype)
  for (p, q) in shapes:
    for t in tokens:
      for name, m, r, nb in ADAPTERS:
        k = jax.random.split(jax.random.PRNGKey(0), 5)
        x = jax.random.normal(k[0], (t, p), jnp.float32).astype(dt)
        w0 = (jax.random.normal(k[1], (p, q)) / np.sqrt(p)).astype(dt)
        a = (jax.random.normal(k[2], (p, r)) / np.sqrt(p)).astype(dt)
        b = (jax.random.normal(k[3], (m * r, q)) * 0.01).astype(dt)
        g = None if nb is None else jax.nn.softmax(jax.random.normal(k[4], (t, nb, m)), -1)
        flops = 2 * t * p * q
        aflops = 2 * t * p * r + 2 * t * m * r * q
        nbytes = dt.itemsize * (t * p + p * q + p * r + m * r * q + t * q) + (
            0 if g is None else 4 * t * nb * m)
        fns = {
            "base": lambda x, w0, a, b, g: jnp.dot(x, w0, preferred_element_type=jnp.float32
                                                   ).astype(x.dtype),
            "xla": lambda x, w0, a, b, g, m=m: xla_adapted(x, w0, a, b, g, experts=m),
        }
        if with_pallas:
          fns["pallas"] = lambda x, w0, a, b, g, m=m: K.adapter_matmul(
              x, w0, a, b, g, experts=m, interpret=interpret)
        row = {"P": p, "Q": q, "tokens": t, "adapter": name}
        for impl, f in fns.items():
          fwd = jax.jit(f)

          def loss(x, a, b, g, f=f, w0=w0):     # W0 frozen: no gradient for it
            return jnp.sum(f(x, w0, a, b, g).astype(jnp.float32))
          bwd = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2) if g is None
                                           else (0, 1, 2, 3)))
          tf = _time(fwd, (x, w0, a, b, g), reps)
          tb = _time(bwd, (x, a, b, g), reps)
          fl = flops + (0 if impl == "base" else aflops)
          row[impl] = {"fwd_ms": 1e3 * tf, "fwdbwd_ms": 1e3 * tb, "tflops": fl / tf / 1e12,
                       "gbs": nbytes / tf / 1e9}
        if "pallas" in row:
          row["xla_over_pallas"] = row["xla"]["fwd_ms"] / row["pallas"]["fwd_ms"]
          row["pallas_overhead"] = row["pallas"]["fwd_ms"] / row["base"]["fwd_ms"] - 1
          row["xla_over_pallas_fwdbwd"] = row["xla"]["fwdbwd_ms"] / row["pallas"]["fwdbwd_ms"]
        row["xla_overhead"] = row["xla"]["fwd_ms"] / row["base"]["fwd_ms"] - 1
        rows.append(row)
        print(_line(row), flush=True)
  return rows


def _line(r):
  s = f"| {r['P']}x{r['Q']} | {r['tokens']} | {r['adapter']} |"
  for impl in ("base", "xla", "pallas"):
    if impl in r:
      v = r[impl]
      s += f" {v['fwd_ms']:.3f} / {v['fwdbwd_ms']:.3f} ms, {v['tflops']:.1f} TF/s, {v['gbs']:.0f} GB/s |"
    else:
      s += " n/a |"
  if "pallas" in r:
    s += f" {r['xla_over_pallas']:.2f}x / {r['xla_over_pallas_fwdbwd']:.2f}x | {100 * r['pallas_overhead']:+.1f}% |"
  else:
    s += f" n/a | xla {100 * r['xla_overhead']:+.1f}% |"
  return s


HEADER = ("| P x Q | tokens | adapter | base fwd / fwd+bwd | xla | pallas | xla/pallas fwd / "
          "fwd+bwd | overhead vs base |\n|---|---|---|---|---|---|---|---|")


def main(argv=None):
  ap = flags.FlagValues()
  flags.DEFINE_integer("reps", 20, "", flag_values=ap)
  flags.DEFINE_string("dtype", "bfloat16", "", flag_values=ap)
  flags.DEFINE_bool("small", False, "P, Q = 256, 512 and tokens 1, 64", flag_values=ap)
  flags.DEFINE_bool("interpret", False, "run the kernel in interpret mode (CPU smoke run; not a timing)", flag_values=ap)
  flags.DEFINE_bool("no_pallas", False, "", flag_values=ap)
  flags.DEFINE_string("json", "", "", flag_values=ap)
  a = cli.parse_argv(ap, argv)
  shapes = [(256, 512), (512, 256)] if a.small else SHAPES
  tokens = [1, 64] if a.small else TOKENS
  backend = jax.default_backend()
  with_pallas = not a.no_pallas and (backend != "cpu" or a.interpret)
  print(f"backend {backend} ({jax.devices()[0].device_kind}), dtype {a.dtype}, "
        f"reps {a.reps}{', INTERPRET MODE: not a performance figure' if a.interpret else ''}"
        f"{'' if with_pallas else ', pallas rows skipped (needs GPU/TPU or --interpret)'}")
  print(HEADER)
  rows = run(shapes, tokens, a.reps, a.dtype, a.interpret, with_pallas)
  if a.json:
    with open(a.json, "w") as f:
      json.dump({"backend": backend, "device": jax.devices()[0].device_kind, "rows": rows}, f,
                indent=2)
  return rows


if __name__ == "__main__":
  main()
