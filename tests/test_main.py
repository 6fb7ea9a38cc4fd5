"""The main entry: `python -m mode_jax.main` on the embedded default (as `make run` runs it)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(workdir, *overrides):
  return subprocess.run(
      [sys.executable, "-m", "mode_jax.main", "--config=configs/default.py:small",
       f"--workdir={workdir}", *overrides], cwd=ROOT, capture_output=True, text=True,
      timeout=600)


def test_sample_demo_end_to_end(tmp_path):
  r = run_main(tmp_path, "--config.sampling.temperature=0.0", "--config.model.scan_layers=True")
  assert r.returncode == 0, r.stderr[-3000:]
  summary = json.loads(r.stdout.strip().splitlines()[-1])
  assert summary["hf_round_trip_exact"] is True
  rows = [json.loads(l) for l in open(tmp_path / "samples.jsonl")]
  assert len(rows) == summary["samples"] == 6
  assert all(0 < r["num_tokens"] <= 16 for r in rows)
  # greedy: both samples of a prompt are identical
  assert rows[0]["completion"] == rows[1]["completion"]
  assert os.path.exists(tmp_path / "hf_checkpoint" / "config.json")


def test_misspelt_override_is_an_error(tmp_path):
  r = run_main(tmp_path, "--config.sampling.temprature=0.5")
  assert r.returncode != 0 and "temprature" in r.stderr


@pytest.mark.slow   # `make run` runs this job at full size; colabs/mode_quickstart its stages
def test_mode_synthetic_job_small(tmp_path):
  """`make run`'s job with small settings: base stage, adapter stage, per-task tables; a second
  call reuses the base model and resumes the finished adapter run. (`pytest -m slow`)"""
  small = ["--config.model.overrides.embed_dim=32", "--config.model.overrides.num_layers=1",
           "--config.model.overrides.head_dim=8", "--config.model.overrides.mlp_dim=64",
           "--config.base.train.steps=6", "--config.train.steps=6",
           "--config.base.train.log_every=3", "--config.train.log_every=3",
           "--config.data.num_train=30", "--config.data.num_eval=4",
           "--config.base.data.num_train=30", "--config.base.data.num_eval=4",
           "--config.eval.num_examples=2", "--config.eval.max_new_tokens=4",
           "--config.train.eval_every=3"]
  r = subprocess.run([sys.executable, "-m", "mode_jax.main", "--config=configs/mode_synthetic.py",
                      f"--workdir={tmp_path}", *small], cwd=ROOT, capture_output=True, text=True,
                     timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  summary = json.loads(r.stdout.strip().splitlines()[-1])
  assert set(summary) >= {"base_rougeL", "adapted_rougeL", "added_params_pct"}
  assert "stage 1" in r.stdout and "MoDE 4x8x1: trainable" in r.stdout
  for name in ("eval_base", "eval_adapted"):
    table = json.load(open(tmp_path / f"{name}.json"))
    assert len(table["tasks"]) == 14 and "rougeL" in table["mean"]
    assert "| **mean** |" in open(tmp_path / f"{name}.md").read()
  assert json.load(open(tmp_path / "adapter_train" / "task_ids.json"))["syn_reverse_string"] == 0
  from mode_jax import adapters
  ad, acfg = adapters.load_adapter(str(tmp_path / "adapter_train" / "adapter"))
  assert acfg.describe() == "MoDE 4x8x1" and "layers_0" in ad
  lines = [json.loads(l) for l in open(tmp_path / "adapter_train" / "metrics.jsonl")]
  train_lines = [l for l in lines if "grad_norm" in l]
  eval_lines = [l for l in lines if "eval_loss" in l]
  assert [l["step"] for l in train_lines] == [3, 6] and [l["step"] for l in eval_lines] == [3, 6]
  assert "routing_entropy/syn_acronym" in eval_lines[0] and "eval_loss/syn_acronym" in eval_lines[0]
  assert os.listdir(tmp_path / "adapter_train" / "checkpoint_best")
  r2 = subprocess.run([sys.executable, "-m", "mode_jax.main",
                       "--config=configs/mode_synthetic.py", f"--workdir={tmp_path}", *small],
                      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r2.returncode == 0 and "stage 1" not in r2.stdout and "resumed from" in r2.stdout


def test_paper_config_variants_build():
  import importlib.util
  from mode_jax.train import run
  spec = importlib.util.spec_from_file_location("g", os.path.join(ROOT, "configs",
                                                                   "mode_gemma2b_sni.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  for variant in mod.VARIANTS:
    c = mod.get_config(variant)
    acfg = run.adapter_config(c.adapter, 756)
    assert c.train.optimizer == "adafactor" and c.train.lr == 1e-3 and c.train.batch_size == 128
    assert c.data.inputs_len + c.data.targets_len == 1024 and c.train.steps == 20000
    assert acfg.describe().replace("x1", "").startswith(
        {"mode6x4": "MoDE 6x4", "mode16x4": "MoDE 16x4", "lora64": "LoRA 64",
         "molora16x4": "MoLoRA 16x4", "molora_sd16x4": "MoLoRA-SD 16x4"}[variant])
  assert run.model_config(c.model).num_params() > 2.5e9
