"""ContinuationScorer: summed log-probs of given continuations agree with two independent
paths: the sampler's KV-cache decoding (log-probs of the greedy tokens it chose) and a plain
full-vocabulary forward per pair (no padding, no gather), on a Gemma 3-like model with
task-routed MoDE adapters, rows of different tasks and lengths in one batch."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mode_jax.adapters import AdapterConfig
from mode_jax.model import ModelConfig, Transformer, sampling, scoring

CFG = ModelConfig(vocab_size=96, embed_dim=32, num_layers=3, num_heads=4, num_kv_heads=2,
                  head_dim=8, mlp_dim=64, max_seq_len=128, model_type="gemma3_text",
                  activation="gelu_tanh", norm_plus_one=True, embed_scale=True,
                  tie_embeddings=True, qk_norm=True, post_norms=True, sliding_window=4,
                  final_softcap=30.0, rope_local_theta=100.0,
                  layer_types=("sliding_attention", "full_attention", "sliding_attention"))
ACFG = AdapterConfig("mode", experts=2, rank=4, block=2, router="task", num_tasks=2,
                     targets=("q", "v", "down"))


@pytest.fixture(scope="module")
def params():
  p = nn.meta.unbox(Transformer(CFG, ACFG).init(jax.random.key(0), jnp.ones((1, 4), jnp.int32),
                                                task_ids=jnp.zeros((1,), jnp.int32))["params"])
  leaves, tree = jax.tree.flatten(p)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  # sharper logits than the init; adapters (zero up-projections at init) made non-zero
  return jax.tree.unflatten(tree, [x * 3 + 0.3 * jax.random.normal(k, x.shape)
                                   for x, k in zip(leaves, keys)])


def reference(params, prompt, cont, tid):
  toks = jnp.asarray([list(prompt) + list(cont)])
  logits = Transformer(CFG, ACFG).apply({"params": params}, toks, task_ids=jnp.asarray([tid]))
  lp = jax.nn.log_softmax(logits[0], -1)
  return float(sum(lp[len(prompt) - 1 + t, c] for t, c in enumerate(cont)))


def test_scores_match_the_samplers_decoding_and_a_full_forward(params):
  rs = np.random.RandomState(0)
  prompts = [list(rs.randint(2, 96, n)) for n in (3, 9, 5, 12, 1, 7)]
  tids = [0, 1, 1, 0, 1, 0]
  out = sampling.Sampler(CFG, params, adapter=ACFG, eos_ids=()).generate(
      prompts, max_new_tokens=6, temperature=0.0, task_ids=tids)
  pairs = [(p, list(out.tokens[i, :out.lengths[i]])) for i, p in enumerate(prompts)]
  # plus continuations the sampler would not choose, of other lengths, and an empty one
  pairs += [(prompts[0], [5]), (prompts[3], [7, 8, 9, 10, 11, 12, 13, 14, 15]), (prompts[1], [])]
  tids += [1, 0, 0]
  got = scoring.ContinuationScorer(CFG, params, adapter=ACFG, batch_size=4).logprobs(pairs, tids)
  np.testing.assert_allclose(got[:6], out.logprobs.sum(1), rtol=1e-4, atol=1e-4)
  want = [reference(params, p, c, t) for (p, c), t in zip(pairs, tids)]
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  assert got[-1] == 0.0 and got[-3] < got[0] / 6      # a forced unlikely token costs more
  # the task id matters: the other task's adapters give other scores
  other = scoring.ContinuationScorer(CFG, params, adapter=ACFG).logprobs(
      pairs[:6], [1 - t for t in tids[:6]])
  assert np.abs(other - got[:6]).max() > 1e-2, (got, other)


def test_bad_pairs_are_rejected(params):
  s = scoring.ContinuationScorer(CFG, params, adapter=ACFG)
  with pytest.raises(ValueError, match="pair 1 has an empty prompt"):
    s.logprobs([([3], [4]), ([], [4])], [0, 0])
  with pytest.raises(ValueError, match="max_seq_len"):
    s.logprobs([([3] * 120, [4] * 20)], [0])
