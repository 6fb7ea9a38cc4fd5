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


def test_first_line_predictions_and_progress(capsys):
  """first_line: generation stops at a newline and the prediction is the raw greedy text's
  first line; progress prints one line per batch."""
  vocab = make_vocab("bytes")
  names = tasks.make_synthetic_tasks(vocab, num_train=8, num_eval=6, names=("acronym",))
  table = tasks.TaskIdTable({names[0]: 0})
  cfg = presets.get("tiny")
  params = nn.meta.unbox(Transformer(cfg).init(jax.random.key(3),
                                               jnp.ones((1, 8), jnp.int32))["params"])
  kw = dict(num_examples=6, max_new_tokens=12, batch_size=4)
  _, cut = evaluate.generate_and_score(cfg, None, params, vocab, names, table, first_line=True,
                                       progress="eval test", samples_per_task=6, **kw)
  _, raw = evaluate.generate_and_score(cfg, None, params, vocab, names, table,
                                       samples_per_task=6, **kw)
  out = capsys.readouterr().out
  assert "eval test: 4/6 prompts" in out and "eval test: 6/6 prompts" in out
  for c, r in zip(cut[names[0]], raw[names[0]]):
    assert "\n" not in c["prediction"]
    assert c["prediction"] == r["prediction"].split("\n")[0].strip()
