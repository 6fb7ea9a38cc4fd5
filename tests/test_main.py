"""The main entry: `python -m mode_jax.main` on the embedded default (as `make run` runs it)."""

import json
import os
import subprocess
import sys

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
