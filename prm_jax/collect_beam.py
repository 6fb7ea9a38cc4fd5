"""The collection of `prm_jax.collect` as an Apache Beam pipeline: questions -> searches ->
records, for millions of labels on Dataflow / Flink / Spark workers.

    python -m prm_jax.collect_beam --config=configs/omegaprm_arith.py \
        --workdir=runs/beam --config.questions.num=64 -- --runner=DirectRunner

    # Dataflow, questions from a JSONL on GCS, a served policy (vLLM/SGLang/JetStream):
    python -m prm_jax.collect_beam --config=configs/omegaprm_arith.py \
        --workdir=gs://BUCKET/omegaprm/math \
        --config.questions.source=jsonl --config.questions.path=gs://BUCKET/math_train.jsonl \
        --config.questions.grader=math --config.policy.kind=http \
        --config.policy.url=http://POLICY_HOST:8000 --config.policy.model=policy -- \
        --runner=DataflowRunner --project=PROJECT --region=REGION \
        --temp_location=gs://BUCKET/tmp --requirements_file=requirements.txt \
        --max_num_workers=64 --experiments=use_runner_v2
    # Flink: -- --runner=FlinkRunner --flink_master=HOST:8081 --environment_type=LOOPBACK

Each question is one element, searched by `SearchFn` with the seed `collect.question_seed(seed,
question id)`, so a question's records are the same as `prm_jax.collect` with concurrency 1
(and do not depend on which worker runs it). Outputs: `<workdir>/records-*.jsonl` (one record
per labelled prefix), `<workdir>/questions-*.jsonl` (per-question summaries) and
`<workdir>/input_errors-*.jsonl` (malformed input lines: file, line text, error). JSONL questions
without an id field get the hash of their line as id; with `questions.num > 0` a JSONL source is
sampled at random to that many questions (a parallel read has no file order). Beam retries a
failed bundle, and the outputs are written by Beam's file sinks (atomic per shard).
"""

from __future__ import annotations

import hashlib
import json

import apache_beam as beam
import ml_collections
from absl import flags
from apache_beam.options.pipeline_options import PipelineOptions
from ml_collections import config_flags

from mode_jax import cli
from prm_jax import collect, graders
from prm_jax.omegaprm.tree import drive


class SearchFn(beam.DoFn):
  """question dict -> records (main output) and its summary (tagged "summaries")."""

  def __init__(self, config_dict: dict):
    self.config_dict = config_dict
    self.policy = None

  def setup(self):
    """Builds the config, grader, splitter and (once per worker) the policy."""
    self.config = ml_collections.ConfigDict(self.config_dict)
    self.is_correct = graders.get(self.config.questions.grader)
    if self.config.policy.kind != "simulated":   # one policy per worker
      self.policy = collect.make_policy(self.config.policy, [])
    vocab = None
    if self.config.splitter.kind == "token_spans":
      vocab = collect.splitter_vocab(self.config, self.policy)
    self.splitter = collect.make_splitter(self.config.splitter, vocab)

  def process(self, q: dict):
    """Searches one question; yields its records, its summary (tagged outputs)."""
    policy = self.policy or collect.make_policy(self.config.policy, [q])
    search = collect.make_search(self.config, q, self.is_correct, self.splitter)
    results, _ = drive({q["id"]: (q["question"], search)}, policy,
                       seed=collect.question_seed(self.config.seed, q["id"]))
    res = results[q["id"]]
    for rec in res.records(q["question"], q["id"], q["answer"]):
      rec["task"] = q.get("task", "")
      yield rec
    yield beam.pvalue.TaggedOutput("summaries", dict(question_id=q["id"], **res.summary()))


def parse_line(line: str, qcfg: dict):
  """A JSONL line -> question dict (`collect.question_from_record`; id defaults to a hash of
  the line), or a tagged input error with the file and the line text (Beam's parallel text
  reader does not know line numbers)."""
  try:
    rec = json.loads(line)
    if not isinstance(rec, dict):
      raise ValueError("expected an object")
    q = collect.question_from_record(
        rec, hashlib.sha1(line.encode()).hexdigest()[:16],
        **{k: qcfg[k] for k in ("question_field", "answer_field", "id_field")},
        task_field=qcfg.get("task_field", "task"))
  except ValueError as e:
    yield beam.pvalue.TaggedOutput("errors", {"file": qcfg["path"], "text": line[:500],
                                              "error": f"{type(e).__name__}: {e}"})
    return
  yield q


def build(p, config, output: str):
  """Adds the pipeline to `p`; returns the records PCollection."""
  qcfg = config.questions
  if qcfg.source == "jsonl":
    lines = p | "ReadLines" >> beam.io.ReadFromText(qcfg.path)
    parsed = (lines | "Parse" >> beam.FlatMap(parse_line, dict(qcfg)).with_outputs(
        "errors", main="questions"))
    questions, errors = parsed.questions, parsed.errors
    if qcfg.num:
      questions = (questions | "Limit" >> beam.combiners.Sample.FixedSizeGlobally(qcfg.num)
                   | "Flatten" >> beam.FlatMap(lambda xs: xs))
  else:
    qs, errs = collect.load_questions(qcfg)
    questions = p | "Questions" >> beam.Create(qs)
    errors = p | "Errors" >> beam.Create(errs)
  out = (questions | "Spread" >> beam.Reshuffle()
         | "Search" >> beam.ParDo(SearchFn(config.to_dict())).with_outputs(
             "summaries", main="records"))
  for name, pcoll in (("records", out.records), ("questions", out.summaries),
                      ("input_errors", errors)):
    (pcoll | f"Json_{name}" >> beam.Map(json.dumps, sort_keys=True)
     | f"Write_{name}" >> beam.io.WriteToText(f"{output}/{name}", file_name_suffix=".jsonl"))
  return out.records


def main(argv=None):
  """`--config` (with `--config.a.b=value` overrides) and `--workdir`; the Beam pipeline
  options after `--`."""
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", "configs/omegaprm_arith.py", "Collection config.",
                                  flag_values=fv, lock_config=True)
  flags.DEFINE_string("workdir", None, "Output directory or bucket prefix.", flag_values=fv)
  flags.mark_flag_as_required("workdir", flag_values=fv)
  args, beam_args = cli.parse_argv(fv, argv, positional=True)
  with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
    build(p, args.config, args.workdir)


if __name__ == "__main__":
  main()
