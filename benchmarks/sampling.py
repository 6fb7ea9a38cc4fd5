"""Sampling throughput: this package's jitted KV-cache sampler vs HF `transformers.generate()`.

    python -m benchmarks.sampling            # the issue's setting (below)
    python -m benchmarks.sampling --batch 64 --new_tokens 256
    python -m benchmarks.sampling --model gemma3_270m --batch 8 --prompt_len 64 \
        --new_tokens 64 --repeats 3           # the real Gemma 3 270M (float32)

Default setting: batch 16, prompt 32, 128 new tokens, temperature 1.0 (no top-k / top-p), on a
Llama-style model with vocab 512, hidden 256, intermediate 688, 4 layers, 8 heads, 4 KV heads,
float32. The sampler shards the batch over one JAX host device per core (`--host_devices`);
torch uses its default intra-op threads (one per core). One random `LlamaForCausalLM` is built with torch, saved with `save_pretrained`, and
loaded with `hf_io.load_hf_checkpoint`, so both sides run the same weights. Both generate exactly
`new_tokens` per row (no EOS). Reported: generated tokens/s (median over `--repeats` timed runs
after one warm-up run; the prefill is included on both sides), and their ratio. A greedy
agreement check (first 16 greedy tokens of each row) guards against comparing different models.
Needs the `[test]` or `[bench]` extra (torch, transformers).

`--model gemma3_270m`: both sides run the real pretrained model (`mode_jax.pretrained`): this
package from its own loader and tokenizer, transformers from the same float32 HF directory the
GGUF was converted into; prompts are `prompt_len` tokens of English text.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from absl import flags
import numpy as np

from mode_jax import cli


# Prompt text of the real-model runs (also used by benchmarks.lora_training).
ENGLISH = ("The history of science is the study of the development of science and scientific "
           "knowledge, including both the natural and social sciences. Science is a body of "
           "empirical, theoretical, and practical knowledge about the natural world, produced "
           "by scientists who emphasize the observation, explanation, and prediction of "
           "real-world phenomena. ")


def _hf_model(args):
  import torch
  from transformers import LlamaConfig, LlamaForCausalLM
  torch.manual_seed(args.seed)
  cfg = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden,
                    intermediate_size=args.intermediate, num_hidden_layers=args.layers,
                    num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
                    max_position_embeddings=2048, bos_token_id=None, eos_token_id=None,
                    pad_token_id=0)
  return LlamaForCausalLM(cfg).eval()


def main(argv=None):
  p = flags.FlagValues()
  for name, default in (("batch", 16), ("prompt_len", 32), ("new_tokens", 128), ("vocab", 512),
                        ("hidden", 256), ("intermediate", 688), ("layers", 4), ("heads", 8),
                        ("kv_heads", 4), ("repeats", 5), ("seed", 0)):
    flags.DEFINE_integer(f"{name}", default, "", flag_values=p)
  flags.DEFINE_float("temperature", 1.0, "", flag_values=p)
  flags.DEFINE_string("model", "", "a mode_jax.pretrained name (e.g. gemma3_270m) "
                 "instead of the random Llama", flag_values=p)
  flags.DEFINE_bool("skip_hf", False, "only time this package's sampler", flag_values=p)
  flags.DEFINE_integer("host_devices", 0, "CPU host devices the sampler shards the batch over (0: one per core)", flag_values=p)
  args = cli.parse_argv(p, argv)

  from mode_jax.model import sampling
  sampling.host_devices(args.host_devices or None)   # before JAX touches a backend
  import jax
  import torch
  from mode_jax.model import hf_io

  rs = np.random.RandomState(args.seed)
  if args.model:
    from transformers import AutoModelForCausalLM
    from mode_jax import pretrained
    cfg, params, vocab = pretrained.load(args.model)
    hf = AutoModelForCausalLM.from_pretrained(pretrained.hf_dir(args.model),
                                              dtype=torch.float32).eval()
    text = list(vocab.encode(ENGLISH * 8))
    starts = rs.randint(0, len(text) - args.prompt_len, args.batch)
    prompts = np.array([[cfg.bos_id] + text[s:s + args.prompt_len - 1] for s in starts])
    args.vocab, args.hidden, args.intermediate = cfg.vocab_size, cfg.embed_dim, cfg.mlp_dim
    args.layers, args.heads, args.kv_heads = cfg.num_layers, cfg.num_heads, cfg.num_kv_heads
  else:
    hf = _hf_model(args)
    with tempfile.TemporaryDirectory() as d:
      hf.save_pretrained(d)
      cfg, params = hf_io.load_hf_checkpoint(d)
    prompts = rs.randint(1, args.vocab, (args.batch, args.prompt_len))
  cfg = cfg.replace(eos_id=None, extra_eos_ids=())
  sampler = sampling.Sampler(cfg, params, eos_ids=())
  n_tokens = args.batch * args.new_tokens

  def ours(seed):
    out = sampler.generate(prompts.tolist(), max_new_tokens=args.new_tokens,
                           temperature=args.temperature, rng=seed)
    assert int(out.lengths.sum()) == n_tokens, out.lengths
    return out

  def theirs(seed):
    torch.manual_seed(seed)
    x = torch.tensor(prompts)
    with torch.no_grad():
      out = hf.generate(x, attention_mask=torch.ones_like(x), do_sample=args.temperature > 0,
                        temperature=args.temperature if args.temperature > 0 else None,
                        top_k=0, top_p=1.0, max_new_tokens=args.new_tokens,
                        min_new_tokens=args.new_tokens, pad_token_id=0, eos_token_id=None)
    assert out.shape == (args.batch, args.prompt_len + args.new_tokens), out.shape
    return out

  def timed(fn):
    fn(0)  # warm-up (compilation for jax)
    times = []
    for r in range(args.repeats):
      t0 = time.perf_counter()
      fn(r + 1)
      times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)

  t_ours, t_ours_min = timed(ours)
  print(f"setting: batch={args.batch} prompt={args.prompt_len} new={args.new_tokens} "
        f"temperature={args.temperature} vocab={args.vocab} hidden={args.hidden} "
        f"mlp={args.intermediate} layers={args.layers} heads={args.heads}/{args.kv_heads} "
        f"float32{' model ' + args.model if args.model else ''}, jax {jax.__version__} on {len(sampler.mesh.devices.flat)} "
        f"{jax.devices()[0].platform} device(s), "
        f"torch threads {torch.get_num_threads()}")
  print(f"mode_jax Sampler      : {n_tokens / t_ours:10.0f} tokens/s  "
        f"(median {t_ours * 1e3:.1f} ms, best {t_ours_min * 1e3:.1f} ms)")
  if args.skip_hf:
    return
  t_hf, t_hf_min = timed(theirs)
  print(f"transformers generate : {n_tokens / t_hf:10.0f} tokens/s  "
        f"(median {t_hf * 1e3:.1f} ms, best {t_hf_min * 1e3:.1f} ms)")
  print(f"ratio (mode_jax / HF) : {t_hf / t_ours:10.2f}x")

  # Same model? Greedy continuations must agree (ties aside).
  k = min(16, args.new_tokens)
  g_ours = sampler.generate(prompts.tolist(), max_new_tokens=k, temperature=0.0).tokens
  with torch.no_grad():
    x = torch.tensor(prompts)
    g_hf = hf.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=k,
                       min_new_tokens=k, pad_token_id=0, eos_token_id=None)[:, -k:].numpy()
  print(f"greedy agreement      : {np.mean(g_ours == g_hf) * 100:.1f}% of {g_hf.size} tokens")


if __name__ == "__main__":
  main()
