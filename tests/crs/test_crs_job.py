"""The RecLLM main job end to end at toy size (one subprocess: bootstrap, vocabulary, base,
MoDE adapters, every session set, metrics, report), and the Gemma 3 config's data fitting its
lengths with the real vocabulary; the realism curve over bootstrap sizes at toy sizes."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY = ["--config.model.overrides.embed_dim=32", "--config.model.overrides.num_layers=1",
       "--config.model.overrides.num_heads=2", "--config.model.overrides.num_kv_heads=1",
       "--config.model.overrides.head_dim=16", "--config.model.overrides.mlp_dim=64",
       "--config.base.train.steps=3", "--config.train.steps=3", "--config.train.batch_size=4",
       "--config.base.train.batch_size=4", "--config.data.crs.num_sessions=30",
       "--config.base.data.crs.num_sessions=30", "--config.data.crs.num_eval_sessions=4",
       "--config.data.crs.catalogue_size=120", "--config.base.data.crs.catalogue_size=120",
       "--config.data.crs.vocab_size=400", "--config.base.data.crs.vocab_size=400",
       "--config.data.inputs_len=512", "--config.data.targets_len=112",
       "--config.model.max_seq_len=1024",
       "--config.sessions.num_sessions=6", "--config.sessions.max_turns=3",
       "--config.eval.num_examples=2", "--config.report.encoder=hashing"]


def test_main_job_runs_every_system_and_writes_sessions_and_report(tmp_path):
  wd = tmp_path / "crs"
  r = subprocess.run([sys.executable, "-m", "crs_jax.main", "--config=configs/crs_synthetic.py",
                      f"--workdir={wd}", *TOY, "--config.sessions.variants=('hybrid/score',)",
                      "--config.sessions.dense.steps=20"], cwd=ROOT, capture_output=True, text=True,
                     timeout=900)
  assert r.returncode == 0, r.stderr[-4000:]
  summary = json.loads(r.stdout.strip().splitlines()[-1])
  assert summary["sessions"] == 6 and 0 <= summary["recllm_success"] <= 1
  assert summary["oracle_success"] == 1.0
  res = json.loads((wd / "results.json").read_text())
  assert {"RecLLM (LLM recommender)", "RecLLM, hybrid retrieval, score", "random",
          "popularity", "rule", "teacher", "oracle", "teacher + LLM simulator",
          "teacher + LLM simulator, forced intents"} == set(res["metrics"])
  assert "intent_accuracy" in res["metrics"]["teacher + LLM simulator, forced intents"]
  files = sorted(os.listdir(wd / "sessions"))
  assert len(files) == 9 and "RecLLM_hybrid_retrieval_score.jsonl" in files
  for f in files:
    assert len((wd / "sessions" / f).read_text().splitlines()) == 6
  hybrid = [json.loads(x) for x in
            (wd / "sessions" / "RecLLM_hybrid_retrieval_score.jsonl").read_text().splitlines()]
  assert any(t.get("retrieved") for r in hybrid for t in r["turns"])
  assert "| distinct_2 |" in (wd / "report.md").read_text()
  assert (wd / "crs_vocab.model").exists() and (wd / "adapter_train" / "adapter").exists()


def test_curve_runs_each_size_and_tabulates_the_report(tmp_path):
  wd = tmp_path / "curve"
  toy = [a for a in TOY if "num_sessions=30" not in a and "encoder=" not in a]
  r = subprocess.run([sys.executable, "-m", "crs_jax.realism_curve",
                      "--config=configs/crs_synthetic.py", f"--workdir={wd}", "--sizes=20,40",
                      *toy], cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-4000:]
  rows = json.loads(r.stdout.strip().splitlines()[-1])
  assert [row["bootstrap_sessions"] for row in rows] == [20, 40]
  for row in rows:
    sets = sorted(os.listdir(os.path.join(row["workdir"], "sessions")))
    assert sets == ["teacher.jsonl", "teacher_and_LLM_simulator.jsonl",
                    "teacher_and_LLM_simulator_forced_intents.jsonl"]
    assert 0.0 <= row["discriminator AUC"] <= 1.0 and 0.0 <= row["goal adherence"] <= 1.0
    lo, hi = row["discriminator AUC 95% interval"]
    assert lo <= row["discriminator AUC"] <= hi
    res = json.loads(open(os.path.join(row["workdir"], "results.json")).read())
    assert res["summary"]["sessions"] == 6 and res["summary"]["recllm_success"] is None
  assert "| 40 |" in (wd / "curve.md").read_text()


def test_per_task_lora_baseline_trains_one_adapter_per_task_alone(tmp_path):
  wd = tmp_path / "per_task"
  r = subprocess.run([sys.executable, "-m", "crs_jax.main", "--config=configs/crs_synthetic.py",
                      f"--workdir={wd}", *TOY, "--config.per_task.enabled=True",
                      "--config.sessions.ranking=score",
                      "--config.sessions.systems=('RecLLM', 'teacher + LLM simulator')"],
                     cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-4000:]
  summary = json.loads(r.stdout.strip().splitlines()[-1])
  assert summary["adapter"].startswith("5 x LoRA ")
  from crs_jax import text
  for t in text.TASKS:      # each adapter trained and evaluated on its own task only
    ev = json.loads((wd / "adapter_train_per_task" / t / "eval.json").read_text())
    assert list(ev["tasks"]) == [f"crs_{t}"]
  assert sorted(summary["task_exact_match"]) == sorted(f"crs_{t}" for t in text.TASKS)
  assert sorted(os.listdir(wd / "sessions")) == ["RecLLM.jsonl",
                                                 "teacher_and_LLM_simulator.jsonl"]
  assert not (wd / "adapter_train").exists() and not (wd / "serving.json").exists()


def _with_bos(dcfg):
  d = dcfg.copy_and_resolve_references()
  d.unlock()
  d.bos_id = 2
  return d


def test_gemma3_config_rows_fit_its_lengths_with_the_real_vocabulary():
  from configs import crs_gemma3
  from crs_jax import data, text
  from mode_jax import pretrained
  from mode_jax.data.vocab import make_vocab
  for variant in ("", "cpu"):
    c = crs_gemma3.get_config(variant)
    assert c.job == "crs_jax.job:crs_synthetic" and c.adapter.router == "task"
  c = crs_gemma3.get_config("cpu")
  vocab = make_vocab("gguf", pretrained.gguf_path("gemma3_270m"))
  crs = c.data.crs
  crs.unlock()
  crs.num_sessions, crs.catalogue_size = 40, 2000
  pairs = data.task_pairs(crs, "train")
  assert set(pairs) == set(text.TASKS)
  data.check_lengths(pairs, vocab, _with_bos(c.data))
  short = _with_bos(c.data)
  short.targets_len = 24
  with pytest.raises(ValueError, match=r"task 'crs_\w+' needs inputs_len >= \d+ and targets_len"):
    data.check_lengths(pairs, vocab, short)
  with pytest.raises(ValueError, match="unknown variant"):
    crs_gemma3.get_config("tpu")
