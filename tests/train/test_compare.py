"""The comparison runner end to end with tiny settings (2 tasks, 4 steps per method): results,
intervals, routing analysis, figures; resuming trains nothing twice; --only_report; the
learning-rate sweep rule."""

import json
import os
import subprocess
import sys

from mode_jax.experiments.study_stats import slug

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
  first = _run(tmp_path)
  res = json.load(open(tmp_path / "results.json"))
  labels = list(res["summary"])
  # within a seed the primary pair trains first; the tables keep the configured order
  started = [line.split(" seed ")[0][3:] for line in first.stdout.splitlines()
             if line.startswith("== ") and " seed 0" in line]
  assert started[:2] == ["MoDE 4x8x1", "LoRA 36"], started
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
  # every method's logged training losses (steps 2 and 4), paired against the primary's LoRA
  tl = res["train_loss"]
  assert set(tl) == set(labels[:4]) and tl["MoDE 4x8x1"]["steps"] == [2, 4]
  curve = [json.loads(x)["loss"] for x in open(tmp_path / "runs/MoDE_4x8x1/seed0/train/"
                                                "metrics.jsonl") if '"loss"' in x]
  assert abs(tl["MoDE 4x8x1"]["mean_loss"]["mean"] - sum(curve) / len(curve)) < 1e-6
  assert "vs_reference" in tl["MoDE 4x8x1"] and "vs_reference" not in tl["LoRA 36"]
  for f in ("results.md", "per_task_scores.png", "routing_MoDE_4x8x1.png", "train_loss.png",
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


def test_compare_lr_sweep_picks_the_lowest_validation_loss(tmp_path):
  """The sweep rule: one run per lr on its own seed, the lowest mean validation loss wins, the
  reported runs train at the winner; resuming re-trains nothing; a finished run trained at
  another lr than the study now gives its method is refused by name."""
  one = [a for a in SMALL if "only_tasks" not in a] + [
      "--config.data.only_tasks=('majority_label',)", "--config.compare.per_task_lora=False",
      "--config.compare.methods=({'label':'','method':'lora','experts':1,'rank':0,'block':0},)"]
  # lr 0 cannot move the adapter off its zero-output init; a good lr lowers the loss
  r = _run(tmp_path, "--config.compare.lr_sweep.lrs=(0.0,0.01)", args=one)
  res = json.load(open(tmp_path / "results.json"))
  (lab,) = res["summary"]
  sweep = json.load(open(tmp_path / "runs" / slug(lab) / "lr_sweep.json"))
  assert set(sweep["eval_loss"]) == {"0", "0.01"} and sweep["seed"] == 100
  assert sweep["eval_loss"]["0.01"] < sweep["eval_loss"]["0"]
  assert sweep["lr"] == 0.01 and res["summary"][lab]["lr"] == 0.01
  assert json.load(open(tmp_path / "runs" / slug(lab) / "seed0" / "result.json"))["lr"] == 0.01
  assert "lr 0.01" in r.stdout and "lr sweep of" in open(tmp_path / "results.md").read()
  assert "== " not in _run(tmp_path, "--config.compare.lr_sweep.lrs=(0.0,0.01)",
                           args=one).stdout
  # without the sweep the method trains at train.lr: the stored run (lr 0.01) is refused
  bad = subprocess.run([sys.executable, "-m", "mode_jax.experiments.compare",
                        "--config=configs/compare_synthetic.py", f"--workdir={tmp_path}", *one,
                        "--config.train.lr=0.003"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
  assert bad.returncode != 0 and "seed0/result.json: trained at lr 0.01" in bad.stderr


def test_gemma3_study_configs_sweep_only_at_the_large_budget():
  import pytest
  from mode_jax.config_files import load_config
  cpu = load_config(os.path.join(ROOT, "configs/compare_gemma3.py"))
  assert tuple(cpu.compare.lr_sweep.lrs) == ()          # the CPU study: one lr, stated
  large = load_config(os.path.join(ROOT, "configs/compare_gemma3.py:large"))
  sw = large.compare.lr_sweep
  assert large.train.lr in sw.lrs and len(sw.lrs) >= 3 and sw.seed not in large.compare.seeds
  assert 0 < sw.steps < large.train.steps
  with pytest.raises(ValueError, match="unknown variant"):
    load_config(os.path.join(ROOT, "configs/compare_gemma3.py:bogus"))
  sni = load_config(os.path.join(ROOT, "configs/compare_gemma3_sni.py"))
  sni_large = load_config(os.path.join(ROOT, "configs/compare_gemma3_sni.py:large"))
  assert (sni.train.batch_size, sni_large.train.batch_size) == (4, large.train.batch_size)
  assert sni_large.train.steps == large.train.steps and sni_large.data.kind == "sni"
  assert tuple(sni_large.compare.lr_sweep.lrs) == tuple(sw.lrs)
