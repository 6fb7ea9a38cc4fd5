"""PRM objectives, evaluation and verification on literal / closed-form cases."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from prm_jax import evaluate as E
from prm_jax import verify as V
from prm_jax.prm import data as D
from prm_jax.prm.objectives import objective_loss

sig = lambda x: 1 / (1 + math.exp(-x))


def _lab(*mcs):
  return jnp.array([[0 if m is None else D.encode_label(m) for m in mcs]], jnp.int32)


def test_soft_and_hard_bce_literal():
  z = jnp.array([[2.0, -1.0, 0.5, 3.0]])
  labels = _lab(0.75, 0.0, None, 0.25)
  loss, acc = objective_loss("soft", z, labels)
  want = np.mean([-(0.75 * math.log(sig(2)) + 0.25 * math.log(1 - sig(2))),
                  -math.log(1 - sig(-1)),
                  -(0.25 * math.log(sig(3)) + 0.75 * math.log(1 - sig(3)))])
  assert float(loss) == pytest.approx(want, rel=1e-5)
  assert float(acc) == pytest.approx(2 / 3)             # 0.25 target vs z = 3 is wrong
  loss, acc = objective_loss("hard", z, labels)         # targets 1, 0, 1
  want = np.mean([-math.log(sig(2)), -math.log(1 - sig(-1)), -math.log(sig(3))])
  assert float(loss) == pytest.approx(want, rel=1e-5) and float(acc) == 1.0
  loss, _ = objective_loss("hard", z, labels, threshold=0.5)   # targets 1, 0, 0
  want = np.mean([-math.log(sig(2)), -math.log(1 - sig(-1)), -math.log(1 - sig(3))])
  assert float(loss) == pytest.approx(want, rel=1e-5)
  with pytest.raises(ValueError, match="objective 'nope'"):
    objective_loss("nope", z, labels)


def test_pairwise_bradley_terry_literal():
  """X (MC .8, z 1) and Y (MC .4, z 0) are siblings: P(X > Y) = (1 + .8 - .4) / 2 = .7;
  Z (group 2) has no sibling and adds no pair."""
  z = jnp.array([[1.0, 0.0, 5.0, 0.0]])
  labels = _lab(0.8, 0.4, 0.1, None)
  groups = jnp.array([[1, 1, 2, 0]])
  loss, acc = objective_loss("pairwise", z, labels, groups, max_positions=8)
  want = -(0.7 * math.log(sig(1.0)) + 0.3 * math.log(sig(-1.0)))
  assert float(loss) == pytest.approx(want, rel=1e-5) and float(acc) == 1.0
  loss, acc = objective_loss("pairwise", jnp.array([[0.0, 1.0, 5.0, 0.0]]), labels, groups,
                             max_positions=8)
  assert float(acc) == 0.0


def test_label_encoding_round_trip():
  for mc in (0.0, 0.125, 1 / 3, 1.0):
    assert D.decode_label(D.encode_label(mc)) == pytest.approx(mc, abs=5e-4)
  assert D.decode_label(0) is None
  with pytest.raises(ValueError, match="outside"):
    D.encode_label(1.5)


def test_sequences_label_each_record_once_at_its_last_token():
  enc = lambda s: [ord(c) for c in s]
  recs = [
      {"question_id": "q", "question": "Q", "steps": ["a\n"], "mc": 0.5, "parent_id": 0},
      {"question_id": "q", "question": "Q", "steps": ["a\n", "bb\n"], "mc": 0.25, "parent_id": 1},
      {"question_id": "q", "question": "Q", "steps": ["a\n", "cc\n"], "mc": 0.0, "parent_id": 1},
  ]
  seqs = D.sequences_from_records(recs, enc, template="{question}:")
  assert len(seqs) == 2                                     # leaves: a+bb, a+cc
  first, second = seqs
  assert first["targets"] == enc("Q:a\nbb\n")
  lab = {i: D.decode_label(x) for i, x in enumerate(first["labels"]) if x}
  assert lab == {3: 0.5, 6: 0.25}                           # ends of "a\n" and "bb\n"
  lab2 = {i: D.decode_label(x) for i, x in enumerate(second["labels"]) if x}
  assert lab2 == {6: 0.0}                                   # "a\n" already labelled
  g1 = [x for x in first["groups"] if x]
  g2 = [x for x in second["groups"] if x]
  assert g1[1] == g2[0] != g1[0]                            # bb and cc are siblings


def test_packed_batches_keep_labels_on_their_tokens():
  """Through the seqio task and PRMFeatureConverter's packing, every label (MC 0 included)
  stays on the token it was put on, and segments / positions restart per sequence."""
  from mode_jax.data.vocab import make_vocab
  v = make_vocab("bytes")
  recs = [{"question_id": f"q{i}", "question": f"Q{i}", "steps": ["1 + 1 = 2\n", "2 + 2 = 4\n"],
           "mc": m, "parent_id": 0} for i, m in enumerate((0.0, 0.5, 1.0, 0.25))]
  recs += [dict(r, steps=r["steps"][:1], mc=0.75) for r in recs]
  seqs = D.sequences_from_records(recs, v.encode, template="{question}:")
  D.register_task("prm_packing_test", {"train": seqs}, v)
  batch = next(D.batches("prm_packing_test", 64, 1, shuffle=False)(0))
  seg, toks, lab = batch["decoder_segment_ids"][0], batch["decoder_input_tokens"][0], \
      batch["prm_labels"][0]
  assert seg.max() >= 2                                   # several sequences per packed row
  for k in range(1, seg.max() + 1):
    s = seqs[k - 1]
    where = seg == k
    assert list(toks[where]) == s["targets"] and list(lab[where]) == s["labels"]
    assert list(batch["decoder_positions"][0][where]) == list(range(len(s["targets"])))
  assert (lab[seg == 0] == 0).all()


def test_auroc_closed_form_and_step_metrics():
  assert E.auroc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 1.0
  assert E.auroc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
  assert E.auroc([0.5] * 4, [1, 0, 1, 0]) == 0.5
  # pairs (pos, neg): (0.9,0.5) win, (0.9,0.7) win, (0.6,0.5) win, (0.6,0.7) loss, ties 1/2
  assert E.auroc([0.9, 0.6, 0.5, 0.7], [1, 1, 0, 0]) == 0.75
  assert E.auroc([0.5, 0.5, 0.1], [1, 0, 0]) == pytest.approx(0.75)
  assert math.isnan(E.auroc([0.1, 0.2], [1, 1]))
  m = E.step_metrics([0.9, 0.4, 0.6], [1, 0, 0])
  assert m["accuracy"] == pytest.approx(2 / 3) and m["auroc"] == 1.0


def test_processbench_scores_and_threshold():
  assert E.predict_first_error([0.9, 0.8, 0.3, 0.9], 0.5) == 2
  assert E.predict_first_error([0.9, 0.8], 0.5) == -1
  s = E.processbench_scores([2, -1, 1, -1, 0], [2, 1, 1, -1, -1])
  assert s["acc_err"] == pytest.approx(2 / 3) and s["acc_cor"] == 0.5
  assert s["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
  probs = [[0.9, 0.6, 0.9], [0.9, 0.9, 0.9], [0.3, 0.9, 0.9]]
  gold = [1, -1, 0]
  t = E.choose_threshold(probs, gold)
  assert 0.6 < t <= 0.9                 # below 0.6 (step 1 of the first), not below 0.9
  assert E.processbench(probs, gold, probs, gold)["f1"] == 1.0


def test_processbench_official_protocol_fixed_threshold_mean_over_subsets():
  """Threshold 0.5 (not tuned): subset a has F1 1, subset b F1 0 (its one erroneous solution
  is missed, its correct one flagged); the average is their unweighted mean 0.5."""
  a = ([[0.9, 0.4], [0.9, 0.9]], [1, -1])
  b = ([[0.9, 0.9], [0.2, 0.9], [0.6, 0.7]], [0, -1, -1])
  res = E.processbench_official({"a": a, "b": b})
  assert res["subsets"]["a"]["f1"] == 1.0
  assert res["subsets"]["b"]["acc_err"] == 0.0 and res["subsets"]["b"]["acc_cor"] == 0.5
  assert res["subsets"]["b"]["f1"] == 0.0 and res["average_f1"] == 0.5
  assert E.processbench_official({"b": b}, threshold=0.95)["subsets"]["b"]["acc_err"] == 1.0
  with pytest.raises(ValueError, match="no subsets"):
    E.processbench_official({})


def test_read_processbench_names_bad_lines(tmp_path):
  import json
  p = tmp_path / "pb.jsonl"
  p.write_text("\n".join([json.dumps({"problem": "q", "steps": ["a", "b"], "label": 1}),
                          json.dumps({"problem": "q", "steps": ["a"], "label": 3}),
                          "{oops",
                          json.dumps({"problem": "r", "steps": ["a"], "label": 0,
                                      "error_kind": "copy"}),
                          json.dumps({"problem": "s", "steps": ["a"], "label": -1,
                                      "error_kind": "copy"})]) + "\n")
  items, errors = E.read_processbench(str(p))
  # "kind": an erroneous item's error kind (None when it names none, and for correct items)
  assert items == [{"question": "q", "steps": ["a", "b"], "first_error": 1, "kind": None},
                   {"question": "r", "steps": ["a"], "first_error": 0, "kind": "copy"},
                   {"question": "s", "steps": ["a"], "first_error": -1, "kind": None}]
  assert sorted(e["line"] for e in errors) == [2, 3]


def test_aggregations_and_selection_literal():
  p = [0.9, 0.5, 0.8]
  assert V.aggregate(p, "product") == pytest.approx(0.36)
  assert V.aggregate(p, "min") == 0.5 and V.aggregate(p, "last") == 0.8
  assert V.aggregate(p, "mean") == pytest.approx(2.2 / 3)
  answers = ["7", "7", "7", "9", "9", None]
  scores = [0.1, 0.1, 0.1, 0.4, 0.35, 0.99]
  assert V.select(answers, method="majority") == "7"
  assert V.select(answers, scores, "weighted") == "9"          # .75 vs .3
  assert V.select(answers, scores, "best_of_n") == "9"         # None never wins
  assert V.select(["1", "2"], method="majority") == "1"       # tie: first seen
  assert V.select([None, None]) is None
  with pytest.raises(ValueError, match="needs scores"):
    V.select(answers, None, "weighted")


def test_accuracy_curves_closed_form_and_shrinking_intervals():
  """Each sample is right with probability 1/2 independently; scores mark the right ones
  perfectly, so best-of-N accuracy is 1 - 2^-n; majority over n = 1 is 1/2."""
  rng = np.random.default_rng(0)
  def make(nq):
    qs = []
    for _ in range(nq):
      right = rng.random(16) < 0.5
      qs.append({"gold": "g", "answers": ["g" if r else f"w{i}" for i, r in enumerate(right)],
                 "scores": {"oracle": right.astype(float)}})
    return qs
  qs = make(400)
  c = V.accuracy_curves(qs, {"best": ("best_of_n", "oracle"), "maj": ("majority", None)},
                        [1, 2, 4], n_boot=50)
  for n in (1, 2, 4):
    emp = np.mean([any(q["answers"][i] == "g" for i in range(16)) for q in qs])
    assert c["best"][n]["mean"] == pytest.approx(min(1 - 0.5 ** n, emp), abs=0.05)
  assert c["maj"][1]["mean"] == pytest.approx(0.5, abs=0.06)
  small = V.accuracy_curves(make(25), {"maj": ("majority", None)}, [1], n_boot=100)
  big = V.accuracy_curves(make(400), {"maj": ("majority", None)}, [1], n_boot=100)
  width = lambda x: x["maj"][1]["hi"] - x["maj"][1]["lo"]
  assert width(big) < width(small)
  assert "N=1" in V.curves_markdown(c)


def _reference_curves(questions, methods, ns, n_boot, seed):
  """The per-(replicate, question) loop over `select` that `accuracy_curves` vectorises."""
  rng = np.random.default_rng(seed)
  n_q, n_max = len(questions), min(len(q["answers"]) for q in questions)
  out = {m: {} for m in methods}
  for n in ns:
    subsets = [[rng.choice(n_max, n, replace=False) for _ in range(n_q)] for _ in range(n_boot)]
    picks = [rng.integers(0, n_q, n_q) for _ in range(n_boot)]
    for label, (method, score) in methods.items():
      correct = np.zeros((n_boot, n_q))
      for b in range(n_boot):
        for qi, q in enumerate(questions):
          sub = subsets[b][qi]
          sc = None if score is None else [q["scores"][score][i] for i in sub]
          correct[b, qi] = V.select([q["answers"][i] for i in sub], sc, method) == q["gold"]
      boot = np.array([correct[b, picks[b]].mean() for b in range(n_boot)])
      out[label][n] = {"mean": float(correct.mean()), "lo": float(np.percentile(boot, 2.5)),
                       "hi": float(np.percentile(boot, 97.5))}
  return out


def test_vectorised_selection_equals_the_select_loop():
  """Random questions with ties, missing answers and repeated scores: every curve point and
  paired difference equals the plain loop over `select` (same random subsets)."""
  rng = np.random.default_rng(3)
  qs = []
  for _ in range(25):
    answers = [None if rng.random() < 0.15 else str(rng.integers(0, 4)) for _ in range(12)]
    qs.append({"gold": str(rng.integers(0, 4)), "answers": answers,
               "scores": {"s": list(np.round(rng.random(12), 1)),    # many exact ties
                          "t": list(rng.random(12))}})
  qs.append({"gold": "1", "answers": [None] * 12, "scores": {"s": [0.5] * 12, "t": [0.1] * 12}})
  methods = {"maj": ("majority", None), "w": ("weighted", "s"), "wt": ("weighted", "t"),
             "bon": ("best_of_n", "s"), "bon_t": ("best_of_n", "t")}
  got = V.accuracy_curves(qs, methods, [1, 3, 8, 12], n_boot=30, seed=5)
  assert got == _reference_curves(qs, methods, [1, 3, 8, 12], 30, 5)
  for a, b in (("w", "maj"), ("bon", "wt")):
    d = V.paired_difference(qs, methods[a], methods[b], 4, n_boot=30, seed=2)
    ref_rng = np.random.default_rng(2)
    diffs = np.zeros((30, len(qs)))
    for bb in range(30):
      for qi, q in enumerate(qs):
        sub = ref_rng.choice(12, 4, replace=False)
        ans = [q["answers"][i] for i in sub]
        pick = [V.select(ans, None if s is None else [q["scores"][s][i] for i in sub], m)
                == q["gold"] for m, s in (methods[a], methods[b])]
        diffs[bb, qi] = float(pick[0]) - float(pick[1])
    boot = np.array([diffs[bb, ref_rng.integers(0, len(qs), len(qs))].mean()
                     for bb in range(30)])
    assert d == {"n": 4, "mean": float(diffs.mean()), "lo": float(np.percentile(boot, 2.5)),
                 "hi": float(np.percentile(boot, 97.5))}


def test_best_of_n_by_steps_literal():
  """Two problems, four samples: a product-like score that falls with the number of steps
  picks the shortest candidate with an answer; counted by hand."""
  qs = [{"gold": "5", "answers": ["5", "4", None, "5"], "num_steps": [3, 1, 1, 4],
         "scores": {"s": [0.5, 0.9, 0.99, 0.4]}},           # picks sample 1 (None never wins)
        {"gold": "7", "answers": ["7", "7", "2", "1"], "num_steps": [2, 3, 2, 5],
         "scores": {"s": [0.8, 0.6, 0.8, 0.1]}}]             # tie 0.8: the first, sample 0
  d = V.best_of_n_by_steps(qs, ["s"], n=4)["s"]
  assert d["questions"] == 2 and d["accuracy"] == 0.5      # wrong "4", right "7"
  assert d["picked_steps"] == 1.5                          # (1 + 2) / 2
  assert d["candidate_steps"] == (3 + 1 + 4 + 2 + 3 + 2 + 5) / 7
  assert d["right_candidate_steps"] == (3 + 4 + 2 + 3) / 4
  assert d["wrong_candidate_steps"] == (1 + 2 + 5) / 3
  assert d["picked_shortest"] == 1.0
  assert d["by_steps"] == {1: {"picked": 1, "accuracy": 0.0}, 2: {"picked": 1, "accuracy": 1.0}}
  d2 = V.best_of_n_by_steps(qs, ["s"], n=1)["s"]             # first sample only
  assert d2["accuracy"] == 1.0 and d2["picked_steps"] == 2.5
