"""The gemma library side of benchmarks.text_generation and tests/model/test_gemma_lib.py, run by
the python of a virtual environment holding `gemma` (3.3.0 with kauldron 1.3.0 and the jax
0.6.2 they were released with: it does not install beside the project):

    PYTHON -m benchmarks.gemma_lib_worker --job=JOB.json    # prints one JSON line

Flags (parsed by hand: absl is there, but this file must not import the project):
  --job   the job file: {"params": an .npz of the gemma-library tree ("a/b/c" keys, from
          `mode_jax.model.gemma_lib.to_gemma_library`), "dtype": "float32" | "bfloat16",
          "logits_tokens": [[ids]] (optional: write their logits to "logits_out"),
          "tokenizer": a SentencePiece model, "prompts": [text], "new_tokens", "repeats",
          "modes": [{"name", "top_p"}] (top_p null: greedy),
          "lora": {"rank", "lr", "tokens", "targets", "weights" ([B][T] lists), "steps"}
          (optional: time a LoRA training step)}

Sampling: `gm.text.Sampler` with the prompts padded to their own length (`pad_length`), a
cache of prompt + new tokens, and EOS / <end_of_turn> forbidden so every row generates exactly
`new_tokens` (the project's side ignores EOS too); tokens/s = rows x new_tokens / wall time,
median over repeats after a warm-up (compilation), prefill included.

LoRA training: the library's own LoRA (its einsum LoRA wrapper through `peft.ModuleInterceptor`,
as `gm.nn.LoRA` does, float32 adapters) on the attention einsums only (q_einsum, kv_einsum,
attn_vec_einsum: the library keeps k and v in one einsum, so its kv adapter is one rank-`rank`
pair over both), AdamW on the LoRA leaves (`peft.split_params` / `merge_params`), the loss the
library's models are trained with: full [B, T, V] logits, token cross-entropy masked by
`weights`. Reported: median step seconds over `steps` timed steps after 2 warm-up steps.
"""

import json

from benchmarks import worker_io


def _tree(npz):
  out = {}
  for key in npz.files:
    node = out
    *path, leaf = key.split("/")
    for p in path:
      node = node.setdefault(p, {})
    node[leaf] = npz[key]
  return out


def main(path):
  import jax
  import jax.numpy as jnp
  import numpy as np
  from gemma import gm
  job = json.load(open(path))
  dtype = jnp.float32 if job.get("dtype", "float32") == "float32" else jnp.bfloat16
  params = jax.tree.map(lambda x: jnp.asarray(x, dtype), _tree(np.load(job["params"])))
  model = gm.nn.Gemma3_270M(dtype=dtype)
  res = {"jax": jax.__version__, "dtype": str(jnp.dtype(dtype))}
  if job.get("logits_tokens"):
    toks = jnp.asarray(job["logits_tokens"], jnp.int32)
    out = model.apply({"params": params}, toks)
    np.save(job["logits_out"], np.asarray(out.logits, np.float32))
  if job.get("prompts"):
    tok = gm.text.Gemma3Tokenizer(job["tokenizer"])
    lens = [len(tok.encode(p)) + 1 for p in job["prompts"]]
    n = job["new_tokens"]
    res["modes"] = {}
    for mode in job["modes"]:
      sampling = (gm.text.Greedy() if mode["top_p"] is None
                  else gm.text.TopPSampling(p=mode["top_p"], temperature=1.0))
      sampler = gm.text.Sampler(model=model, params=params, tokenizer=tok, sampling=sampling,
                                cache_length=max(lens) + n + 8, max_out_length=n,
                                pad_length=max(lens), forbidden_tokens=[1, 106])

      def run(seed):
        out = sampler.sample(job["prompts"], max_new_tokens=n, rng=jax.random.key(seed),
                             return_state=True)
        return np.asarray(out.tokens)
      median, toks = worker_io.timed(run, job["repeats"])
      res["modes"][mode["name"]] = {"tokens_per_s": len(job["prompts"]) * n / median,
                                    "tokens": toks[:, :16].tolist()}
  if job.get("lora"):
    res["lora"] = _lora_step(job["lora"], params, dtype)
  print(json.dumps(res))


_ATTENTION = ("q_einsum", "kv_einsum", "attn_vec_einsum", "qkv_einsum")


def _lora_step(spec, params, dtype):
  import jax
  import jax.numpy as jnp
  import optax
  from gemma import gm, peft
  from gemma.gm.nn import _layers, _lora

  def replace(module):       # gm.nn.LoRA's own replacement, restricted to attention
    if isinstance(module, _layers.Einsum) and module.name in _ATTENTION:
      return _lora._LoRAEinsum(rank=spec["rank"], dtype=jnp.float32, wrapped=module)
    return module

  model = gm.nn.Gemma3_270M(dtype=dtype)

  def apply(all_params, tokens):
    with peft.ModuleInterceptor(replace):
      return model.apply({"params": all_params}, tokens).logits

  tokens = jnp.asarray(spec["tokens"], jnp.int32)
  targets = jnp.asarray(spec["targets"], jnp.int32)
  weights = jnp.asarray(spec["weights"], jnp.float32)

  def init(rng):
    with peft.ModuleInterceptor(replace):
      return model.init(rng, tokens[:1, :8])["params"]
  _, lora = peft.split_params(jax.jit(init)(jax.random.key(0)))
  tx = optax.adamw(spec["lr"], weight_decay=0.0)

  def loss_fn(lora_params, base):
    logits = apply(peft.merge_params(base, lora_params), tokens)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
    return jnp.sum(nll * weights) / jnp.sum(weights)

  @jax.jit
  def step(lora_params, opt_state, base):
    loss, grads = jax.value_and_grad(loss_fn)(lora_params, base)
    updates, opt_state = tx.update(grads, opt_state, lora_params)
    return optax.apply_updates(lora_params, updates), opt_state, loss

  state = [lora, tx.init(lora)]
  losses = []

  def run(_):
    state[0], state[1], loss = step(state[0], state[1], params)
    losses.append(float(loss))
  run(0)
  median, _ = worker_io.timed(run, spec["steps"])
  return {"step_s": median, "first_loss": losses[0],
          "trainable": int(sum(x.size for x in jax.tree.leaves(lora)))}


if __name__ == "__main__":
  worker_io.main(__doc__, main)
