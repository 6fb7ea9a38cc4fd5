"""The comparison runner end to end with tiny settings (2 tasks, 4 steps per method)."""

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


def test_compare_small(tmp_path):
  r = subprocess.run([sys.executable, "-m", "mode_jax.experiments.compare",
                      "--config=configs/compare_synthetic.py", f"--workdir={tmp_path}", *SMALL],
                     cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  res = json.load(open(tmp_path / "results.json"))
  labels = list(res["summary"])
  assert labels[:4] == ["LoRA 36", "MoLoRA 4x8", "MoLoRA-SD 4x14", "MoDE 4x8x1"]
  assert labels[4].startswith("LoRA 8 per task")
  budgets = [res["summary"][lab]["added_params"] for lab in labels[:4]]
  assert max(budgets) / min(budgets) < 1.1            # matched added-parameter budgets
  assert res["win_rates_of"] == "MoDE 4x8x1" and len(res["win_rates"]) == 4
  assert set(res["per_task"]["MoDE 4x8x1"]) == {"syn_acronym", "syn_majority_label"}
  assert len(res["routing"]) == 2 and len(res["routing"][0]) == 4
  assert abs(sum(res["routing"][0]) - 1.0) < 1e-4
  for f in ("results.md", "per_task_scores.png", "mode_routing.png"):
    assert os.path.getsize(tmp_path / f) > 0


SNI_DIR = os.path.join(ROOT, "..", "shared", "data", "sni")


def test_compare_sni_small_on_shared_files(tmp_path):
  import pytest
  if not os.path.isdir(SNI_DIR):
    pytest.skip(f"shared SNI data not found at {SNI_DIR}")
  keep = "('sni_task363_sst2_polarity_classification','sni_task1289_trec_classification')"
  args = [a for a in SMALL if "only_tasks" not in a] + [
      f"--config.data.only_tasks={keep}", "--config.data.num_pos=0",
      "--config.data.inputs_len=256", "--config.data.targets_len=16",
      "--config.train.batch_size=4", "--config.compare.per_task_lora_rank=0"]
  r = subprocess.run([sys.executable, "-m", "mode_jax.experiments.compare",
                      "--config=configs/compare_sni.py", f"--workdir={tmp_path}", *args],
                     cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  res = json.load(open(tmp_path / "results.json"))
  assert set(res["per_task"]["MoDE 4x8x1"]) == {
      "sni_task363_sst2_polarity_classification", "sni_task1289_trec_classification"}
