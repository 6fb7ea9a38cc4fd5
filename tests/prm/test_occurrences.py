"""Occurrence counts of de-duplicated prefixes (the search's side: test_omegaprm_search.py):
training data, objectives and the label report weight records by them."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from prm_jax import label_quality as L
from prm_jax.prm import data as D
from prm_jax.prm.objectives import objective_loss

sig = lambda x: 1 / (1 + math.exp(-x))


def test_sequences_carry_weights_and_add_identical_records():
  enc = lambda s: [ord(c) for c in s]
  recs = [
      {"question_id": "q", "question": "Q", "steps": ["a\n"], "mc": 1.0, "occurrences": 3},
      {"question_id": "q", "question": "Q", "steps": ["a\n", "b\n"], "mc": 0.0},
      {"question_id": "q", "question": "Q", "steps": ["a\n"], "mc": 1.0, "occurrences": 2},
  ]
  (seq,) = D.sequences_from_records(recs, enc, template="{question}:")
  assert {i: w for i, w in enumerate(seq["weights"]) if w} == {3: 5, 5: 1}
  assert [i for i, x in enumerate(seq["labels"]) if x] == [3, 5]
  (seq,) = D.sequences_from_records(recs, enc, template="{question}:", weighting="uniform")
  assert {i: w for i, w in enumerate(seq["weights"]) if w} == {3: 2, 5: 1}
  with pytest.raises(ValueError, match="'occurrences' must be an int >= 1"):
    D.sequences_from_records([dict(recs[0], occurrences=0)], enc)
  with pytest.raises(ValueError, match="weighting 'counts'"):
    D.sequences_from_records(recs, enc, weighting="counts")


def test_weighted_pointwise_equals_repeated_records():
  """Weight 2 on a label == that label twice (closed form)."""
  z = jnp.array([[2.0, -1.0, 0.5]])
  labels = jnp.array([[D.encode_label(0.75), D.encode_label(0.0), 0]])
  loss, acc = objective_loss("soft", z, labels, weights=jnp.array([[2, 1, 0]]))
  l1 = -(0.75 * math.log(sig(2)) + 0.25 * math.log(1 - sig(2)))
  l2 = -math.log(1 - sig(-1))
  assert float(loss) == pytest.approx((2 * l1 + l2) / 3, rel=1e-5) and float(acc) == 1.0
  z3 = jnp.array([[2.0, 2.0, -1.0]])
  lab3 = jnp.array([[D.encode_label(0.75)] * 2 + [D.encode_label(0.0)]])
  assert float(loss) == pytest.approx(float(objective_loss("soft", z3, lab3)[0]), rel=1e-6)
  hard, _ = objective_loss("hard", z, labels, weights=jnp.array([[3, 1, 0]]))
  assert float(hard) == pytest.approx((3 * -math.log(sig(2)) + l2) / 4, rel=1e-5)


def test_weighted_pairwise_counts_pairs_of_occurrences():
  """Siblings X (MC .8, z 1, weight 2), Y (MC .4, z 0, weight 1), W (MC .4, z 3, weight 1):
  pairs X-Y (weight 2), X-W (2), Y-W (1, equal MC: target .5, not an ordered pair)."""
  z = jnp.array([[1.0, 0.0, 3.0]])
  labels = jnp.array([[D.encode_label(m) for m in (0.8, 0.4, 0.4)]])
  groups = jnp.array([[1, 1, 1]])
  loss, acc = objective_loss("pairwise", z, labels, groups, max_positions=4,
                             weights=jnp.array([[2, 1, 1]]))
  bt = lambda p, d: -(p * math.log(sig(d)) + (1 - p) * math.log(sig(-d)))
  want = (2 * bt(0.7, 1.0) + 2 * bt(0.7, -2.0) + bt(0.5, -3.0)) / 5
  assert float(loss) == pytest.approx(want, rel=1e-5)
  assert float(acc) == pytest.approx(0.5)              # X > Y right (2), X > W wrong (2)


def test_packed_batches_keep_weights_on_their_tokens():
  from mode_jax.data.vocab import make_vocab
  v = make_vocab("bytes")
  recs = [{"question_id": f"q{i}", "question": f"Q{i}", "steps": ["1 + 1 = 2\n"], "mc": 0.5,
           "occurrences": i + 1} for i in range(4)]
  seqs = D.sequences_from_records(recs, v.encode, template="{question}:")
  D.register_task("prm_weights_packing_test", {"train": seqs}, v)
  batch = next(D.batches("prm_weights_packing_test", 64, 1, shuffle=False)(0))
  seg, w = batch["decoder_segment_ids"][0], batch["prm_weights"][0]
  for k in range(1, seg.max() + 1):
    assert list(w[seg == k]) == seqs[k - 1]["weights"] and max(seqs[k - 1]["weights"]) == k
  assert (w[seg == 0] == 0).all()


def test_label_report_weights_by_occurrences():
  """One right prefix shared by 4 solutions (one record, occurrences 4, label 1) and two
  distinct wrong ones (label 0): 1/3 positive by record, 4/6 by occurrence."""
  recs = [{"question_id": "q", "question": "Q", "steps": ["a"], "mc": 0.5, "occurrences": 4,
           "ok": 1},
          {"question_id": "q", "question": "Q", "steps": ["b"], "mc": 0.0, "ok": 0},
          {"question_id": "q", "question": "Q", "steps": ["c"], "mc": 0.0, "ok": 0}]
  out = L.label_quality(recs, exact=lambda r: r["ok"], n_boot=10)
  assert out["positive"]["value"] == pytest.approx(1 / 3)
  assert out["occurrences"] == 6
  assert out["positive_by_occurrence"]["value"] == pytest.approx(4 / 6)
  assert out["mc_zero_by_occurrence"]["value"] == pytest.approx(2 / 6)
  assert out["exact"]["right_share_by_occurrence"] == pytest.approx(4 / 6)
  assert out["exact"]["accuracy_by_occurrence"]["value"] == 1.0
  plain = L.label_quality([dict(r, occurrences=1) for r in recs], n_boot=10)
  assert "positive_by_occurrence" not in plain
  with pytest.raises(ValueError, match="record 0: field 'occurrences'"):
    L.label_quality([dict(recs[0], occurrences="4")], n_boot=10)
  assert np.isfinite(out["positive_by_occurrence"]["lo"])


def test_label_sources_literal():
  """Prefixes of an arithmetic question (right with MC > 0, right with MC = 0, wrong with
  MC > 0) and one the judge cannot read: each source rewrites / keeps / drops as defined."""
  from prm_jax.envs import arithmetic as A
  from prm_jax.prm import label_sources as LS
  prob = A.make_problems(1, A.ArithmeticConfig(min_ops=3, max_ops=3), seed=0)[0]
  good = [prob.step_text(i) + "\n" for i in range(prob.num_steps)]
  bad = good[:1] + [prob.step_text(1, result=prob.values[2] + 1) + "\n"]
  recs = [{"question": prob.question, "steps": good[:1], "mc": 0.5},      # right, MC > 0
          {"question": prob.question, "steps": good[:2], "mc": 0.0},      # right, MC = 0 (FN)
          {"question": prob.question, "steps": bad, "mc": 0.125},         # wrong, MC > 0 (FP)
          {"question": "not arithmetic", "steps": ["x"], "mc": 0.25}]     # the judge abstains
  out, info = LS.apply(recs, "mc")
  assert out == recs and info["kept"] == 4
  out, info = LS.apply(recs, "hard@0.2")
  assert [r["mc"] for r in out] == [1.0, 0.0, 0.0, 1.0] and info["changed"] == 3
  out, info = LS.apply(recs, "exact", "arithmetic")
  assert [r["mc"] for r in out] == [1.0, 1.0, 0.0] and info["changed"] == 2
  assert info["dropped_unjudged"] == 1
  out, info = LS.apply(recs, "consensus", "arithmetic")
  assert out == recs[:1] and info["dropped_disagree"] == 2
  with pytest.raises(ValueError, match="needs prm.judge"):
    LS.apply(recs, "exact")
  for bad_source in ("hard@1.5", "hard@x", "oracle"):
    with pytest.raises(ValueError, match="prm.labels"):
      LS.parse(bad_source)


def test_build_sequences_applies_the_label_source_and_reports_bad_occurrences(tmp_path):
  import json

  import ml_collections

  from mode_jax.data.vocab import make_vocab
  from prm_jax.envs import arithmetic as A
  from prm_jax.prm.train import build_sequences
  probs = A.make_problems(30, A.ArithmeticConfig(min_ops=2, max_ops=2), seed=3)
  path = tmp_path / "records.jsonl"
  with open(path, "w") as f:
    for p in probs:     # a right first step labelled MC = 0: "exact" relabels it 1
      f.write(json.dumps({"question": p.question, "steps": [p.step_text(0) + "\n"], "mc": 0.0,
                          "occurrences": 3}) + "\n")
    f.write(json.dumps({"question": "Q", "steps": ["a"], "mc": 0.5, "occurrences": -1}) + "\n")
  pcfg = ml_collections.ConfigDict(dict(
      objective="soft", records=(str(path),), template="{question}\n", dev_fraction=0.0,
      weighting="occurrences", labels="exact", judge="arithmetic"))
  seqs, info = build_sequences(pcfg, make_vocab("bytes"))
  assert info["label_source"]["changed"] == 30 and info["train_labels"] == 30
  assert info["train_label_weight"] == 90
  labs = [D.decode_label(x) for s in seqs["train"] for x in s["labels"] if x]
  assert labs == [1.0] * 30
  assert info["num_input_errors"] == 1
  assert "records.jsonl:31: field 'occurrences'" in info["input_errors"][0]["error"]
