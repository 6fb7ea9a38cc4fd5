"""The Beam pipeline (DirectRunner) gives the same records as `prm_jax.collect` at its default
concurrency, and routes malformed JSONL lines to input_errors."""

import glob
import json

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from configs import omegaprm_arith
from mode_jax import config_files
from prm_jax import collect
from prm_jax.envs import arithmetic as A
from prm_jax import collect_beam


def _config(num=6):
  c = omegaprm_arith.get_config()
  c.questions.num = num
  c.search.search_limit = 4
  c.log_every = 1000        # concurrency stays the config's (8): records must not depend on it
  return c


def _run(config, out):
  with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
    collect_beam.build(p, config, str(out))


def _rows(pattern, drop=()):
  rows = [json.loads(l) for f in sorted(glob.glob(pattern)) for l in open(f)]
  return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def _key(r):
  return (r["question_id"], r.get("state_id", -1))


def test_beam_matches_collect(tmp_path):
  config = _config()
  collect.collect(config, str(tmp_path / "collect"), log=lambda *_: None)
  _run(config, tmp_path / "beam")
  got = sorted(_rows(str(tmp_path / "beam" / "records-*.jsonl")), key=_key)
  want = sorted(_rows(str(tmp_path / "collect" / "records.jsonl")), key=_key)
  assert got == want and len(got) > 20
  drop = ("wall_seconds", "records_end")
  assert (sorted(_rows(str(tmp_path / "beam" / "questions-*.jsonl"), drop), key=_key)
          == sorted(_rows(str(tmp_path / "collect" / "questions.jsonl"), drop), key=_key))


def test_beam_jsonl_input_with_malformed_lines(tmp_path):
  probs = A.make_problems(3, A.ArithmeticConfig(min_ops=4, max_ops=6), seed=9)
  path = tmp_path / "q.jsonl"
  lines = [json.dumps({"id": p.id, "question": p.question, "answer": p.answer,
                      "problem": p.to_json()}) for p in probs]
  lines.insert(1, "{broken")
  lines.append(json.dumps({"id": "z", "question": 5, "answer": "1"}))
  path.write_text("\n".join(lines) + "\n")
  config = config_files.load_config(omegaprm_arith.__file__, [
      "questions.source=jsonl", f"questions.path={path}", "questions.num=0",
      "search.search_limit=3"])
  _run(config, tmp_path / "out")
  errors = _rows(str(tmp_path / "out" / "input_errors-*.jsonl"))
  assert sorted(e["text"][:7] for e in errors) == ['{"id": ', "{broken"]
  assert all(e["file"] == str(path) for e in errors)
  done = {r["question_id"] for r in _rows(str(tmp_path / "out" / "questions-*.jsonl"))}
  assert done == {p.id for p in probs}
