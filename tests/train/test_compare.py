"""The comparison runner end to end with tiny settings (2 tasks, 4 steps per method): results,
intervals, routing analysis, figures; resuming trains nothing twice; --only_report."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["--config.model.overrides.embed_dim=32", "--config.model.overrides.num_layers=1",
         "--config.model.overrides.head_dim=8", "--config.model.overrides.mlp_dim=64",
         "--config.base.train.steps=4", "--config.train.steps=4",
         "--config.base.train.log_every=2", "--config.train.log_every=2",
         "--config.data.num_train=30", "--config.data.num_eval=4",
         "--config.base.data.num_train=30", "--config.base.data.num_eval=4",
         "--config.eval.num_examples=2", "--config.eval.max_new_tokens=4",
         "--config.data.only_tasks=('majority_label','acronym')"]


def _run(tmp_path, *extra, config="configs/compare_synthetic.py", args=SMALL):
  r = subprocess.run([sys.executable, "-m", "mode_jax.experiments.compare", f"--config={config}",
                      f"--workdir={tmp_path}", *args, *extra],
                     cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  return r


def test_compare_small_then_resumed_and_reported(tmp_path):
  _run(tmp_path)
  res = json.load(open(tmp_path / "results.json"))
  labels = list(res["summary"])
  assert labels[:4] == ["LoRA 36", "MoLoRA 4x8", "MoLoRA-SD 4x14", "MoDE 4x8x1"]
  assert labels[4].endswith("per task")
  budgets = [res["summary"][lab]["added_params"] for lab in labels]
  assert max(budgets) / min(budgets) < 1.1            # matched added-parameter budgets
  assert all(res["summary"][lab]["seeds"] == [0] for lab in labels)
  assert res["primary"]["a"] == "MoDE 4x8x1" and res["primary"]["b"] == "LoRA 36"
  assert res["primary"]["seeds"] == [0] and res["primary"]["diff"]["half_width"] is None
  assert set(res["wins"]["MoDE 4x8x1"]) == set(labels) - {"MoDE 4x8x1"}
  assert set(res["per_task"]["MoDE 4x8x1"]) == {"syn_acronym", "syn_majority_label"}
  assert set(res["routing"]) == {"MoLoRA 4x8", "MoLoRA-SD 4x14", "MoDE 4x8x1"}
  usage = res["routing"]["MoDE 4x8x1"]["usage"]       # [tasks, blocks, experts]
  assert len(usage) == 2 and len(usage[0][0]) == 4
  assert abs(sum(usage[0][0]) - 1.0) < 1e-4
  assert len(res["routing"]["MoDE 4x8x1"]["task_entropy"]) == 2
  assert res["base"]["shots"] == 0 and set(res["base"]["scores"]) == set(
      res["per_task"]["MoDE 4x8x1"])
  for f in ("results.md", "per_task_scores.png", "routing_MoDE_4x8x1.png",
            "runs/MoDE_4x8x1/seed0/result.json", "runs/per_task_lora/seed0/result.json"):
    assert os.path.getsize(tmp_path / f) > 0, f
  # The same command again trains nothing (every (method, seed) has its result) ...
  again = _run(tmp_path)
  assert "== " not in again.stdout
  assert json.load(open(tmp_path / "results.json"))["per_task"] == res["per_task"]
  # ... and --only_report rebuilds the tables from the run files alone.
  os.remove(tmp_path / "results.json")
  _run(tmp_path, "--only_report")
  assert json.load(open(tmp_path / "results.json"))["per_task"] == res["per_task"]


def test_compare_refuses_unmatched_budgets(tmp_path):
  r = subprocess.run([sys.executable, "-m", "mode_jax.experiments.compare",
                      "--config=configs/compare_synthetic.py", f"--workdir={tmp_path}", *SMALL,
                      "--config.compare.budget_tolerance=0.0001"],
                     cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r.returncode != 0 and "budget_tolerance" in r.stderr


SNI_DIR = os.path.join(ROOT, "..", "shared", "data", "sni")


def test_compare_sni_small_on_shared_files(tmp_path):
  import pytest
  if not os.path.isdir(SNI_DIR):
    pytest.skip(f"shared SNI data not found at {SNI_DIR}")
  keep = "('sni_task363_sst2_polarity_classification','sni_task1289_trec_classification')"
  args = [a for a in SMALL if "only_tasks" not in a] + [
      f"--config.data.only_tasks={keep}", "--config.data.num_pos=0",
      "--config.data.inputs_len=256", "--config.data.targets_len=16",
      "--config.train.batch_size=4", "--config.compare.per_task_lora=False"]
  r = subprocess.run([sys.executable, "-m", "mode_jax.experiments.compare",
                      "--config=configs/compare_sni.py", f"--workdir={tmp_path}", *args],
                     cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  res = json.load(open(tmp_path / "results.json"))
  assert set(res["per_task"]["MoDE 4x8x1"]) == {
      "sni_task363_sst2_polarity_classification", "sni_task1289_trec_classification"}
