"""`prm_jax.collect`: exactly-once output across SIGKILLs, malformed input lines, the three
methods from one config."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from configs import omegaprm_arith
from prm_jax import collect
from prm_jax.envs import arithmetic as A
from prm_jax.policy.simulated import SimulatedPolicy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "omegaprm_arith.py")


def small_config(num=12, **over):
  c = omegaprm_arith.get_config()
  c.questions.num = num
  c.search.search_limit = 6
  c.concurrency = 1
  c.log_every = 1000
  for k, v in over.items():
    c[k] = v
  return c


def _cli(workdir, *flags):
  return [sys.executable, "-m", "prm_jax.collect", f"--config={CONFIG}", f"--workdir={workdir}",
          "--config.search.search_limit=6", "--config.concurrency=1", "--config.log_every=1000",
          *flags]


def _read(path):
  with open(path, "rb") as f:
    return f.read()


def _strip_offsets(path):
  return [{k: v for k, v in json.loads(l).items() if k not in ("records_end", "wall_seconds")}
          for l in open(path)]


def test_records_do_not_depend_on_concurrency(tmp_path):
  """Each question's search is seeded from its own id: the default concurrency (8 questions
  batched together), 3 and 1 give the same records (they once differed: the seed came from the
  ids of the whole concurrent chunk)."""
  outs = {}
  for conc in (omegaprm_arith.get_config().concurrency, 3, 1):
    wd = tmp_path / f"c{conc}"
    collect.collect(small_config(num=10, concurrency=conc), str(wd), log=lambda *_: None)
    recs = [json.loads(l) for l in open(wd / "records.jsonl")]
    qs = _strip_offsets(wd / "questions.jsonl")   # questions finish in batch-dependent order
    outs[conc] = (sorted(recs, key=lambda r: (r["question_id"], r["state_id"])),
                  sorted(qs, key=lambda r: r["question_id"]))
  assert omegaprm_arith.get_config().concurrency == 8
  assert len(outs[8][0]) > 20 and outs[8] == outs[3] == outs[1]


def test_resume_after_sigkill_between_records_and_summary(tmp_path):
  ref = tmp_path / "ref"
  collect.collect(small_config(), str(ref), log=lambda *_: None)
  run = tmp_path / "run"
  p = subprocess.run(_cli(run, "--config.questions.num=12", "--config.crash_after_records=3"),
                     cwd=ROOT, capture_output=True, text=True)
  assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
  assert len(open(run / "questions.jsonl").readlines()) == 2     # third question died unsaved
  p = subprocess.run(_cli(run, "--config.questions.num=12"), cwd=ROOT, capture_output=True,
                     text=True)
  assert p.returncode == 0, p.stderr[-2000:]
  assert _read(run / "records.jsonl") == _read(ref / "records.jsonl")
  assert _strip_offsets(run / "questions.jsonl") == _strip_offsets(ref / "questions.jsonl")
  stats = json.loads(open(run / "stats.json").read())
  assert stats["questions"] == 12 and len(stats["sessions"]) == 1   # the killed run wrote none
  assert stats["rollouts"] == json.loads(open(ref / "stats.json").read())["rollouts"]


def test_resume_after_external_sigkill_at_a_random_moment(tmp_path):
  num = 400
  ref = tmp_path / "ref"
  collect.collect(small_config(num), str(ref), log=lambda *_: None)
  run = tmp_path / "run"
  proc = subprocess.Popen(_cli(run, f"--config.questions.num={num}"), cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  summary = run / "questions.jsonl"
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    if summary.exists() and summary.stat().st_size > 5000:
      break
    time.sleep(0.005)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  n_before = len(open(summary).read().splitlines())
  assert 0 < n_before < num, "the run should have been killed part-way"
  p = subprocess.run(_cli(run, f"--config.questions.num={num}"), cwd=ROOT, capture_output=True,
                     text=True)
  assert p.returncode == 0, p.stderr[-2000:]
  assert _read(run / "records.jsonl") == _read(ref / "records.jsonl")
  ids = [json.loads(l)["question_id"] for l in open(summary)]
  assert len(ids) == len(set(ids)) == num


def test_malformed_input_lines_are_reported_and_skipped(tmp_path):
  probs = A.make_problems(4, A.ArithmeticConfig(min_ops=4, max_ops=6), seed=5)
  path = tmp_path / "q.jsonl"
  lines = [json.dumps({"id": p.id, "question": p.question, "answer": p.answer}) for p in probs]
  lines.insert(1, "{not json")
  lines.insert(3, json.dumps({"id": "x", "question": "no answer"}))
  lines.append(json.dumps({"id": probs[0].id, "question": "dup", "answer": "1"}))
  path.write_text("\n".join(lines) + "\n")
  c = small_config()
  c.questions.source, c.questions.path = "jsonl", str(path)
  stats = collect.collect(c, str(tmp_path / "out"), policy=SimulatedPolicy(probs, 0.1, 0.0),
                          log=lambda *_: None)
  assert stats["questions"] == 4 and stats["input_questions"] == 4
  errs = {e["line"]: e["error"] for e in stats["input_errors"]}
  assert set(errs) == {2, 4, 7}
  assert "invalid JSON" in errs[2] and "'answer'" in errs[4] and "duplicate id" in errs[7]
  assert str(path) in errs[2]


@pytest.mark.parametrize("method", ["math_shepherd", "sequential"])
def test_baselines_through_the_same_job(tmp_path, method):
  stats = collect.collect(small_config(4, method=method), str(tmp_path), log=lambda *_: None)
  recs = [json.loads(l) for l in open(tmp_path / "records.jsonl")]
  assert stats["method"] == method and recs and {r["method"] for r in recs} == {method}
  assert all(set(r) >= {"question", "steps", "last_step", "mc", "rollouts"} for r in recs)
  with pytest.raises(ValueError, match="method='nope'"):
    collect.collect(small_config(2, method="nope"), str(tmp_path / "x"), log=lambda *_: None)
