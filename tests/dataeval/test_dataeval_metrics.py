"""Definition tests for the semantic, distribution, stats, labels, overlap and coverage
metrics of prm_jax.label_quality."""

import numpy as np
import pytest

from mode_jax.dataeval import coverage, distribution, overlap, semantic, stats
from prm_jax import label_quality as labels
from prm_jax.envs import arithmetic


def test_vendi_identical_one_orthogonal_n_and_dual_form():
  rng = np.random.default_rng(0)
  v = rng.normal(size=16)
  assert semantic.vendi_score(np.tile(v, (10, 1))) == pytest.approx(1.0, abs=1e-6)
  assert semantic.vendi_score(np.eye(16)[:7] * 3.0) == pytest.approx(7.0, abs=1e-6)
  # n > d: the d x d dual form; 40 rows cycling over 8 orthonormal directions -> 8
  q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
  assert semantic.vendi_score(np.tile(q, (5, 1))) == pytest.approx(8.0, abs=1e-6)
  assert semantic.vendi_score(np.tile(v, (40, 1))) == pytest.approx(1.0, abs=1e-6)


def test_vendi_matches_vendi_score_package():
  vendi = pytest.importorskip("vendi_score.vendi")
  rng = np.random.default_rng(1)
  small, big = rng.normal(size=(30, 64)), rng.normal(size=(200, 12))
  assert semantic.vendi_score(small) == pytest.approx(vendi.score_X(small), rel=1e-6)
  assert semantic.vendi_score(big) == pytest.approx(vendi.score_dual(big), rel=1e-6)


def test_mean_cosine_distance_brute_force():
  x = np.random.default_rng(2).normal(size=(25, 6))
  u = x / np.linalg.norm(x, axis=1, keepdims=True)
  c = u @ u.T
  brute = np.mean([1 - c[i, j] for i in range(25) for j in range(25) if i != j])
  assert semantic.mean_cosine_distance(x) == pytest.approx(brute, abs=1e-12)
  assert semantic.mean_cosine_distance(np.tile(x[:1], (5, 1))) == pytest.approx(0, abs=1e-12)


def _blobs(rng, n, center, d=8):
  return rng.normal(size=(n, d)) + center


def test_identical_sets_auc_half_frechet_zero_mauve_one():
  x = _blobs(np.random.default_rng(3), 300, 0.0)
  texts = [f"t{i}" for i in range(300)]
  auc = distribution.discriminator_auc(x, x, groups=texts + texts, n_boot=50)
  assert auc["value"] == pytest.approx(0.5, abs=1e-9)
  assert distribution.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
  assert distribution.mauve_score(x, x)["mauve"] == pytest.approx(1.0, abs=1e-6)


def test_same_distribution_vs_disjoint_clusters():
  rng = np.random.default_rng(4)
  a, b = _blobs(rng, 400, 0.0), _blobs(rng, 400, 0.0)
  far = _blobs(rng, 400, 10.0)
  same_auc = distribution.discriminator_auc(a, b, n_boot=50)
  assert 0.4 < same_auc["value"] < 0.6 and same_auc["lo"] < 0.5 < same_auc["hi"]
  assert distribution.discriminator_auc(a, far, n_boot=50)["value"] > 0.99
  m_same, m_far = distribution.mauve_seeds(a, b, seeds=(0, 1)), distribution.mauve_seeds(a, far,
                                                                                         seeds=(0,))
  assert m_same["mean"] > 0.8 and m_far["mean"] < 0.05
  assert m_same["min"] <= m_same["mean"] <= m_same["max"]


def test_frechet_one_dimensional_closed_form():
  rng = np.random.default_rng(5)

  def exact(n, mean, sd):          # a sample with exactly this mean and (ddof=1) sd
    z = rng.normal(size=n)
    z = (z - z.mean()) / z.std(ddof=1)
    return (mean + sd * z)[:, None]
  p, q = exact(500, 1.0, 2.0), exact(700, -0.5, 0.5)
  assert distribution.frechet_distance(p, q) == pytest.approx(1.5 ** 2 + 1.5 ** 2, rel=1e-6)


def test_gini_and_intervals_shrink_with_n():
  assert stats.gini([5, 5, 5, 5]) == 0.0
  assert stats.gini([0, 0, 0, 10]) == pytest.approx(0.75)
  g = stats.gini_of_occurrences(["a", "b", "c"] * 50, n_boot=50)
  assert g["value"] == 0.0 and g["lo"] == 0.0 and g["hi"] < 0.1
  rng = np.random.default_rng(6)

  def width(e):
    return e["hi"] - e["lo"]
  small, large = rng.random(200) < 0.3, rng.random(5000) < 0.3
  b_small = stats.bootstrap(lambda i: small[i].mean(), len(small), n_boot=200)
  b_large = stats.bootstrap(lambda i: large[i].mean(), len(large), n_boot=200)
  assert width(b_large) < 0.5 * width(b_small)
  emb_s, emb_l = rng.normal(size=(100, 8)), rng.normal(size=(2000, 8))
  h_s = stats.half_sampling(lambda i: semantic.mean_cosine_distance(emb_s[i]), 100, n_boot=30)
  h_l = stats.half_sampling(lambda i: semantic.mean_cosine_distance(emb_l[i]), 2000, n_boot=30)
  assert width(h_l) < 0.5 * width(h_s)
  again = stats.bootstrap(lambda i: small[i].mean(), len(small), n_boot=200)
  assert again == b_small                              # fixed seed


def test_cluster_bootstrap_wider_for_correlated_groups():
  # 40 groups of 25 identical values: the effective sample is 40, not 1000
  rng = np.random.default_rng(7)
  vals = np.repeat(rng.random(40) < 0.5, 25).astype(float)
  groups = np.repeat(np.arange(40), 25)
  iid = stats.bootstrap(lambda i: vals[i].mean(), 1000, n_boot=300)
  clus = stats.bootstrap(lambda i: vals[i].mean(), 1000, groups=groups, n_boot=300)
  assert (clus["hi"] - clus["lo"]) > 3 * (iid["hi"] - iid["lo"])


def _record(problem, steps, mc, rollouts=8):
  return {"question_id": problem.id, "question": problem.question, "steps": steps, "mc": mc,
          "rollouts": rollouts}


def test_label_quality_against_exact_labels():
  p = arithmetic.make_problems(1, seed=0)[0]
  right = [p.step_text(i) + "\n" for i in range(p.num_steps - 1)]
  wrong0 = p.step_text(0, result=p.values[1] + 1) + "\n"
  recs = [_record(p, right[:1], 0.75), _record(p, right[:2], 0.5),      # right, positive
          _record(p, right[:1] + ["junk\n"], 0.0),                         # wrong, negative
          _record(p, [wrong0], 0.125),                                     # wrong, positive: FP
          _record(p, right[:2], 0.0, rollouts=8)]                          # right, negative: FN
  got = labels.label_quality(recs, exact=labels.EXACT["arithmetic"], n_boot=20)
  ex = got["exact"]
  assert ex["records"] == 5 and ex["right_share"] == pytest.approx(3 / 5)
  assert ex["false_positive"]["value"] == pytest.approx(1 / 2)
  assert ex["false_negative"]["value"] == pytest.approx(1 / 3)
  assert ex["accuracy"]["value"] == pytest.approx(3 / 5)
  assert ex["false_discovery"]["value"] == pytest.approx(1 / 3)
  assert "by_source" not in ex                         # the records do not say "terminal"
  # recover ratio: mean MC of wrong prefixes / of right ones = (0 + .125) / 2 / ((.75 + .5 + 0) / 3)
  assert ex["recover_ratio"]["value"] == pytest.approx(0.0625 / (1.25 / 3))
  for r, t in zip(recs, (False, False, False, True, False)):
    r["terminal"] = t
  got_t = labels.label_quality(recs, exact=labels.EXACT["arithmetic"], n_boot=5)["exact"]
  assert got_t["recover_ratio"]["value"] == pytest.approx(0.0)   # graded solution left out
  src = got_t["by_source"]
  assert src["complete solutions (graded)"]["false_discovery"]["value"] == 1.0
  assert src["prefixes (rollout MC)"]["false_positive"]["value"] == 0.0
  assert got["positive"]["value"] == pytest.approx(3 / 5)
  assert got["mc_zero"]["value"] == pytest.approx(2 / 5)
  assert got["duplicate_prefixes"] == 1 and got["conflicting_prefixes"] == 1
  assert got["by_position"][1]["records"] == 2 and got["by_position"][2]["records"] == 3
  assert got["by_position"][1]["positive"]["value"] == pytest.approx(1.0)
  plug = np.mean([(1 - 0.75) ** 8, (1 - 0.5) ** 8, (1 - 0.125) ** 8])
  assert got["estimated_fn"]["value"] == pytest.approx(plug)
  assert got["single_rollout_positives"]["value"] == pytest.approx(1 / 3)
  with pytest.raises(ValueError, match="record 0: field 'mc'"):
    labels.label_quality([{"steps": ["a"]}])


def test_duplicates_near_duplicates_and_leakage():
  long = " ".join(f"word{i}" for i in range(60))          # 58 distinct 3-gram shingles
  texts = [long, long.upper(), long.replace("word30", "other", 1), "something else entirely",
           "another unrelated sentence here"]
  assert overlap.exact_duplicates(texts)["duplicate_share"] == pytest.approx(1 / 5)
  near = overlap.near_duplicates(texts)
  assert near["pairs"] == 2 and near["clusters"] == 1 and near["largest_cluster"] == 3
  assert near["share_with_near_duplicate"] == pytest.approx(3 / 5)
  train = ["What is 2 plus 2 ? It is four , said the teacher to the class on monday morning",
           "short one"]
  test = ["what is 2 plus 2?  it is four, said the teacher to the class on monday morning",
          "It is four , said the teacher to the class on monday morning again and again",
          "short one", "one", "completely new words"]
  lk = overlap.leakage(train, test, n=13, n_boot=20)
  assert lk["exact"]["value"] == pytest.approx(2 / 5)
  assert lk["ngram"]["value"] == pytest.approx(4 / 5)   # "one" occurs whole in a train text


def test_coverage_and_lengths():
  cov = coverage.coverage(["a", "a", "b"], ["a", "c"])
  assert [r["value"] for r in cov["rows"]] == ["a", "b", "c"]
  assert cov["rows"][0]["generated_share"] == pytest.approx(2 / 3)
  assert cov["uncovered_reference_values"] == ["c"]
  ln = coverage.lengths(["one two", "one two three four"], n_boot=20)
  assert ln["mean"]["value"] == 3.0 and ln["median"] == 3.0
