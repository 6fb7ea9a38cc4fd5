"""`prm_jax.learnability` on the simulated policy: exact step labels checked by an independent
parser, nested data sizes, a held-out set disjoint from every training question, the report,
paired differences, and a resume that neither resamples nor retrains."""

import json
import os
import re

import pytest

from configs import prm_learnability
from prm_jax import learnability, pipeline
from prm_jax.policy.simulated import SimulatedBackend, SimulatedPolicy
from tests.prm.test_prm_train import _tiny_backbone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_STEP = re.compile(r"^\s*(-?\d+)\s*([-+*/])\s*(-?\d+)\s*=\s*(-?\d+)\.?\s*$")


@pytest.fixture(autouse=True)
def _config_path():
  pipeline._CONFIG_PATH[0] = os.path.join(ROOT, "configs", "prm_learnability.py")


def _small(tmp_path):
  c = prm_learnability.get_config()
  _tiny_backbone(tmp_path / "policy")
  c.learn.policy = str(tmp_path / "policy")
  c.learn.update(dict(train_questions=24, sizes=(8, 24), train_samples=4, eval_samples=3,
                      n_boot=50))
  c.pipeline.eval_questions = 12
  c.prm.max_len = 128
  c.learn.prms = dict(small=learnability_entry(8), large=learnability_entry(24))
  c.learn.compare = ("large-small", "small-small")
  return c


def learnability_entry(size):
  return dict(size=size, backbone="policy", head="scalar", adapter=dict(method="none"),
              steps=4, batch=4, lr=1e-3)


def _right_by_hand(problem, steps) -> list[int]:
  """1 while every line so far is right: line i < len(ops) writes "a op b = c" from the true
  running value with the problem's i-th operation and its true result; the next line states the
  true answer; nothing after it. (+ and - only: the generator of the config here.)"""
  value, ok, out = problem.start, True, []
  for i, line in enumerate(steps):
    line = line.strip()
    if i < len(problem.ops):
      op, b = problem.ops[i]
      assert op in "+-"
      true = value + b if op == "+" else value - b
      m = _STEP.match(line)
      ok = ok and m is not None and (int(m[1]), m[2], int(m[3]), int(m[4])) == (value, op, b, true)
      value = true
    elif i == len(problem.ops):
      m = re.fullmatch(r"The answer is (-?\d+)\.?", line)
      ok = ok and m is not None and int(m[1]) == value
    else:
      ok = False
    out.append(int(ok))
  return out


def test_learnability_data_heldout_report_and_resume(tmp_path):
  c = _small(tmp_path)
  train = learnability.train_problems(c)
  held = pipeline.heldout_problems(c, exclude=[p.question for p in train])
  backend = SimulatedBackend(SimulatedPolicy(train + held, p_error=0.25))
  wd = str(tmp_path / "wd")
  out = learnability.run(c, wd, log=lambda *_: None, backend=backend)

  # exact labels: an independent line parser agrees on every record
  by_q = {p.question: p for p in train}
  recs = {n: [json.loads(l) for l in open(os.path.join(wd, f"records_{n}.jsonl"))]
          for n in (8, 24)}
  assert {r["mc"] for r in recs[24]} == {0.0, 1.0}
  for r in recs[24]:
    assert r["mc"] == _right_by_hand(by_q[r["question"]], r["steps"])[-1], r
  # nested sizes: the small set is the first 8 questions' records of the large one
  small_qs = {p.question for p in train[:8]}
  assert recs[8] == [r for r in recs[24] if r["question"] in small_qs]
  assert len({r["question"] for r in recs[24]}) == 24
  # held-out: disjoint from every training question here and the pipeline's splits
  keys = {pipeline.normalize_question(p.question) for p in held}
  assert len(keys) == 12
  assert not keys & {pipeline.normalize_question(p.question) for p in train}
  for qs in pipeline.training_questions(c).values():
    assert not keys & qs

  ev = out["eval"]
  assert ev["paired"]["small-small"]["value"] == 0.0
  assert ev["paired"]["small-small"]["lo"] == ev["paired"]["small-small"]["hi"] == 0.0
  for name in ("small", "large"):
    r = ev["prms"][name]
    assert 0.0 <= r["step_auroc_ci"]["value"] <= 1.0
    assert r["step_auroc_ci"]["value"] == pytest.approx(r["step"]["auroc"])
    assert out["train"][name]["train_labels"] > 0
  assert out["train"]["large"]["train_labels"] > out["train"]["small"]["train_labels"]
  md = open(os.path.join(wd, "report.md")).read()
  assert "| small | policy | scalar | 8 |" in md and "| large-small |" in md

  class Refuses:
    def complete(self, *a, **k):
      raise AssertionError("resumed run sampled again")
  again = learnability.run(c, wd, log=lambda *_: None, backend=Refuses())
  assert again["eval"]["prms"]["large"]["step"] == ev["prms"]["large"]["step"]
  c.learn.eval_samples = 5                    # another config in the same workdir: refused
  with pytest.raises(ValueError, match="eval_samples.json: 12 problems x 3 samples cached"):
    learnability.run(c, wd, log=lambda *_: None, backend=Refuses())


def test_unknown_head_and_size_are_named(tmp_path):
  c = _small(tmp_path)
  c.learn.prms.small.head = "vocab"
  with pytest.raises(ValueError, match="head 'vocab'"):
    learnability.prm_config(c, c.learn.prms.small, "x.jsonl")
  c.learn.prms.small.head, c.learn.prms.small.size = "scalar", 9
  with pytest.raises(ValueError, match=r"learn.prms.small.size=9"):
    learnability.stage_train(c, str(tmp_path), {8: "a", 24: "b"}, log=lambda *_: None)


def test_first_error_auroc_controls_for_position():
  """Position alone ranks all steps well (labels are 1 until the first error) but scores 0.5 on
  the first error within a step index; a score that sees the error scores 1."""
  from prm_jax.prm import metrics
  exact = [[1, 1, 0, 0], [1, 0, 0], [1, 1, 1], [0, 0], [1, 1, 1, 0]]
  pos = metrics.position_scores(exact)
  from prm_jax.prm.metrics import auroc
  import numpy as np
  flat = np.concatenate([np.asarray(y) for y in exact])
  assert auroc(np.concatenate(pos), flat) > 0.7
  assert metrics.first_error_auroc(pos, exact) == 0.5
  sees = [np.asarray(y, float) for y in exact]
  assert metrics.first_error_auroc(sees, exact) == 1.0
  # steps after the first error do not count: scoring them anything changes nothing
  noisy = [np.asarray([s if i <= (list(y).index(0) if 0 in y else 99) else -5.0
                       for i, s in enumerate(np.asarray(y, float))]) for y in exact]
  assert metrics.first_error_auroc(noisy, exact) == 1.0
