"""Generation-based eval runs all tasks as one stream (bounded compiles), with the scores of
per-task generation."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from mode_jax.data import tasks
from mode_jax.data.vocab import make_vocab
from mode_jax.model import Transformer, presets
from mode_jax.model.sampling import Sampler
from mode_jax.train import evaluate


def test_all_tasks_in_one_stream_score_as_per_task(monkeypatch, tmp_path):
  vocab = make_vocab("bytes")
  names = tasks.make_synthetic_tasks(vocab, num_train=8, num_eval=6,
                                     names=("reverse_string", "acronym", "count_char"))
  table = tasks.TaskIdTable.load_or_create(str(tmp_path), names)
  cfg = presets.get("tiny")
  params = nn.meta.unbox(Transformer(cfg).init(jax.random.key(0),
                                               jnp.ones((1, 8), jnp.int32))["params"])
  calls = []
  real = Sampler.generate

  def counting(self, prompts, **kw):
    calls.append(len(prompts))
    return real(self, prompts, **kw)
  monkeypatch.setattr(Sampler, "generate", counting)
  kw = dict(num_examples=4, max_new_tokens=4)
  together, samples = evaluate.generate_and_score(cfg, None, params, vocab, names, table, **kw)
  assert calls == [12]                              # 3 tasks x 4 examples, one call
  calls.clear()
  apart = {}
  for name in names:
    apart.update(evaluate.generate_and_score(cfg, None, params, vocab, [name], table, **kw)[0])
  assert calls == [4, 4, 4]
  assert together == apart and set(samples) == set(names)
