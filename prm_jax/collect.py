"""Resumable process-supervision collection:

    python -m prm_jax.collect --config=configs/omegaprm_arith.py --workdir=DIR

Runs OmegaPRM (or Math-Shepherd / the sequential scan: `--config.method=math_shepherd`) over
the configured questions with the configured policy, `concurrency` questions at a time (their
pending rollouts batched into one policy call per round). Writes in DIR:
- records.jsonl: one record per labelled prefix (question_id, question, steps, last_step, mc,
  rollouts, correct_rollouts, terminal, state_id, parent_id, occurrences, method; occurrences:
  how many labelled points the prefix stands for, since identical prefixes share one record);
- questions.jsonl: one summary per finished question (cost stats, search counters, and the
  byte offset where its records end in records.jsonl);
- stats.json: totals (policy calls, rollouts, tokens, wall time, annotations per 1,000 policy
  calls and per 1,000 rollouts, rollouts/s and tokens/s per session), malformed input lines.

Exactly-once on restart: a question's records are appended and fsynced, then its summary. On
start, a torn last summary line is cut off and records.jsonl is truncated to the end recorded
by the last complete summary, so a run killed at any point (SIGKILL included) and started
again skips finished questions and neither loses nor duplicates records. Malformed input
lines are reported with their line number in stats.json and skipped.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zlib

import numpy as np

from mode_jax import cli, config_files
from mode_jax.atomic_io import jsonl_records, read_json, recover_jsonl, write_json_atomic
from mode_jax import serve
from mode_jax.data.vocab import make_vocab, parse_vocab_spec
from mode_jax.serve.api import Sampling
from prm_jax import graders, steps
from prm_jax.envs import arithmetic
from prm_jax.omegaprm.search import OmegaPRMConfig, omegaprm_search
from prm_jax.omegaprm.shepherd import ShepherdConfig, shepherd_search
from prm_jax.omegaprm.tree import drive
from prm_jax.policy.base import TemplatePolicy, template_stops
from prm_jax.policy.simulated import SimulatedPolicy

METHODS = ("omegaprm", "math_shepherd", "sequential")


def question_seed(seed: int, qid: str) -> int:
  """The seed of question `qid`'s search: independent of the order and worker that runs it."""
  return int(np.random.SeedSequence([seed, zlib.crc32(qid.encode())]).generate_state(1)[0])


# ------------------------------------------------------------------------------ questions
def question_rows(args) -> list[dict]:
  """A `mode_jax.dataeval.sources` source: the questions the collection config `args.config`
  would search, `args.num` of them drawn with `args.seed` (another seed: a held-out set for the
  report's leakage check)."""
  c = config_files.load_module(args.config or "configs/omegaprm_arith.py").get_config()
  c.questions.num, c.questions.seed = args.num, args.seed
  return load_questions(c.questions)[0]


def load_questions(qcfg) -> tuple[list[dict], list[dict]]:
  """([{"id", "question", "answer"}], [{"line", "error"}]) from config.questions."""
  if qcfg.source == "arithmetic":
    probs = arithmetic.make_problems(qcfg.num, arithmetic.ArithmeticConfig(**dict(qcfg.arith)),
                                     seed=qcfg.seed)
    return [{"id": p.id, "question": p.question, "answer": p.answer, "problem": p.to_json(),
             "task": "arithmetic"} for p in probs], []
  if qcfg.source == "jsonl":
    return read_questions(qcfg.path, qcfg.question_field, qcfg.answer_field, qcfg.id_field,
                          limit=qcfg.num, task_field=qcfg.get("task_field", "task"))
  raise ValueError(f"questions.source={qcfg.source!r}: expected 'arithmetic' or 'jsonl'")


def question_from_record(rec: dict, default_id: str, *, question_field: str = "question",
                         answer_field: str = "answer", id_field: str = "id",
                         task_field: str = "task") -> dict:
  """One input object -> {"id", "question", "answer", "task"[, "problem"]}; a GSM8K-style
  answer ("... #### 18") keeps its final part; arithmetic env problems (Problem.to_json under
  "problem") pass through for the simulated policy. ValueError names a bad field."""
  if not isinstance(rec.get(question_field), str):
    raise ValueError(f"missing or non-string field {question_field!r}")
  if not isinstance(rec.get(answer_field), (str, int, float)):
    raise ValueError(f"missing or non-text field {answer_field!r}")
  answer = str(rec[answer_field])
  if "####" in answer:
    answer = answer.rsplit("####", 1)[1].strip()
  q = {"id": str(rec.get(id_field, default_id)), "question": rec[question_field],
       "answer": answer, "task": str(rec.get(task_field) or "")}
  if isinstance(rec.get("problem"), dict):
    q["problem"] = rec["problem"]
  return q


def read_questions(path: str, question_field: str = "question", answer_field: str = "answer",
                   id_field: str = "id", limit: int = 0,
                   task_field: str = "task") -> tuple[list[dict], list[dict]]:
  """Questions from JSONL; a GSM8K-style answer ("... #### 18") keeps its final part; the
  optional `task_field` (a domain name) is copied to the records, where a multi-task PRM reads
  it. Bad lines are returned as errors ({"line", "error"}) and skipped."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"questions.path {path!r} does not exist")
  out, errors, seen = [], [], set()
  fields = dict(question_field=question_field, answer_field=answer_field, id_field=id_field,
                task_field=task_field)
  for n, rec in jsonl_records(path, errors):
    try:
      q = question_from_record(rec, f"line-{n}", **fields)
    except ValueError as e:
      errors.append({"line": n, "error": f"{path}:{n}: {e}"})
      continue
    if q["id"] in seen:
      errors.append({"line": n, "error": f"{path}:{n}: duplicate {id_field} {q['id']!r}"})
      continue
    seen.add(q["id"])
    out.append(q)
    if limit and len(out) >= limit:
      break
  for e in errors:
    logging.warning("skipping input line: %s", e["error"])
  return out, errors


# ------------------------------------------------------------------------------ policy
def make_policy(pcfg, questions: list[dict]):
  """The policy of `config.policy` (simulated, jax or http) for `questions`."""
  if pcfg.kind == "simulated":
    if any("problem" not in q for q in questions):
      raise ValueError("policy.kind='simulated' needs arithmetic problems: questions.source="
                       "'arithmetic', or JSONL lines with a 'problem' field (Problem.to_json)")
    return SimulatedPolicy([arithmetic.Problem.from_json(q["problem"]) for q in questions],
                           p_error=pcfg.p_error, p_recover=pcfg.p_recover)
  return TemplatePolicy(text_model(pcfg), pcfg.template, policy_sampling(pcfg))


def policy_sampling(pcfg) -> Sampling:
  """The sampling settings of a `config.policy` block; without stop strings, the template's
  lead-in (a policy that writes past its answer starts a made-up next question, whose answer
  the grader would read)."""
  return Sampling(max_tokens=pcfg.max_new_tokens, temperature=pcfg.temperature,
                  top_p=pcfg.top_p, top_k=pcfg.get("top_k", 0),
                  stop=tuple(pcfg.stop) or template_stops(pcfg.template))


def text_model(pcfg):
  """The `mode_jax.serve.TextModel` of a jax or http `config.policy` block: `checkpoint` (a
  pretrained name such as gemma3_270m, an HF directory, a GGUF file or a trained workdir, with
  `adapter_dir` and `tokenizer`) loaded in-process, or the OpenAI-compatible server at `url`
  (`chat` for /v1/chat/completions)."""
  if pcfg.kind == "jax":
    if not pcfg.checkpoint:
      raise ValueError("policy.kind='jax' needs policy.checkpoint (a pretrained name, an HF "
                       "directory, a .gguf file or a trained workdir)")
    return serve.load(pcfg.checkpoint, adapter=pcfg.adapter_dir,
                      tokenizer=pcfg.get("tokenizer", ""), max_batch=pcfg.max_batch)
  if pcfg.kind == "http":
    if not pcfg.url:
      raise ValueError("policy.kind='http' needs policy.url (an OpenAI-compatible server)")
    return serve.OpenAIClient(pcfg.url, pcfg.model, chat=pcfg.get("chat", False),
                              api_key=os.environ.get(pcfg.api_key_env, ""),
                              max_concurrency=pcfg.max_concurrency, timeout=pcfg.timeout,
                              max_retries=pcfg.max_retries,
                              retry_window=pcfg.get("retry_window", 600.0))
  raise ValueError(f"policy.kind={pcfg.kind!r}: expected simulated, jax or http")


def splitter_vocab(config, policy):
  """The vocabulary of a token-span splitter: the in-process policy's own tokenizer, else
  `splitter.tokenizer` ('bytes' or '<kind>:<path>'); the simulated policy writes bytes."""
  model = getattr(policy, "model", None)
  if getattr(model, "vocab", None) is not None:
    return model.vocab
  spec = config.splitter.get("tokenizer", "")
  if spec:
    v = parse_vocab_spec(spec, "splitter.tokenizer")
    return make_vocab(v["kind"], v["path"] or None)
  if config.policy.kind == "simulated":
    return make_vocab("bytes")
  raise ValueError("splitter.kind='token_spans' with a served policy needs "
                   "splitter.tokenizer ('<kind>:<path>' of the served model's tokenizer)")


def make_search(config, q: dict, is_correct, splitter):
  """The search generator of `config.method` (omegaprm, math_shepherd, sequential) for one
  question."""
  if config.method == "omegaprm":
    return omegaprm_search(q["question"], q["answer"], is_correct,
                           OmegaPRMConfig(**dict(config.search)), splitter)
  if config.method in ("math_shepherd", "sequential"):
    mode = "per_step" if config.method == "math_shepherd" else "sequential"
    return shepherd_search(q["question"], q["answer"], is_correct,
                           ShepherdConfig(mode=mode, **dict(config.shepherd)), splitter)
  raise ValueError(f"method={config.method!r}: expected one of {METHODS}")


def make_splitter(scfg, vocab=None):
  """The step splitter of `config.splitter` (delimiter, or token spans of `vocab`)."""
  return steps.make_splitter(scfg.kind, delimiter=scfg.delimiter, vocab=vocab, span=scfg.span)


# ------------------------------------------------------------------------------ output
class ResumableOutput:
  """records.jsonl + questions.jsonl with exactly-once appends per question (see module doc)."""

  def __init__(self, workdir: str):
    os.makedirs(workdir, exist_ok=True)
    self.records_path = os.path.join(workdir, "records.jsonl")
    self.summary_path = os.path.join(workdir, "questions.jsonl")
    self.summaries = self._recover()

  def _recover(self) -> list[dict]:
    summaries = recover_jsonl(self.summary_path)   # a torn last line is cut off
    end = summaries[-1]["records_end"] if summaries else 0
    if os.path.exists(self.records_path) and os.path.getsize(self.records_path) != end:
      if os.path.getsize(self.records_path) < end:
        raise RuntimeError(f"{self.records_path} is shorter ({os.path.getsize(self.records_path)}"
                           f" bytes) than {self.summary_path} says ({end}); refusing to go on")
      logging.warning("%s: dropping records of an unfinished question", self.records_path)
      with open(self.records_path, "r+b") as f:
        f.truncate(end)
    return summaries

  @property
  def done(self) -> set:
    """Ids of the questions already written."""
    return {s["question_id"] for s in self.summaries}

  def append(self, records: list[dict], summary: dict, crash_before_summary: bool = False):
    """Appends one question's records then its summary, each fsync'ed, so a crash between them
    is repaired on resume (records past the last summary are cut)."""
    with open(self.records_path, "ab") as f:
      f.write("".join(json.dumps(r) + "\n" for r in records).encode())
      f.flush()
      os.fsync(f.fileno())
      end = f.tell()
    if crash_before_summary:   # test hook: the worst moment to die
      import signal
      os.kill(os.getpid(), signal.SIGKILL)
    summary = dict(summary, records_end=end)
    with open(self.summary_path, "ab") as f:
      f.write((json.dumps(summary) + "\n").encode())
      f.flush()
      os.fsync(f.fileno())
    self.summaries.append(summary)


def totals(summaries: list[dict]) -> dict:
  """Totals over question summaries: calls, rollouts, tokens, labels, filtered questions and
  annotations per 1k policy calls."""
  keys = ("policy_calls", "rollouts", "tokens", "labelled_prefixes", "localised_solutions")
  t = {k: int(sum(s.get(k, 0) for s in summaries)) for k in keys}
  t["questions"] = len(summaries)
  t["filtered_questions"] = int(sum(s.get("filtered", False) for s in summaries))
  t["annotations_per_1k_policy_calls"] = 1000 * t["labelled_prefixes"] / max(1, t["policy_calls"])
  t["annotations_per_1k_rollouts"] = 1000 * t["labelled_prefixes"] / max(1, t["rollouts"])
  return t


# ------------------------------------------------------------------------------ job
def collect(config, workdir: str, *, policy=None, log=print) -> dict:
  """Runs (or resumes) the collection; returns the stats written to DIR/stats.json."""
  if config.method not in METHODS:
    raise ValueError(f"method={config.method!r}: expected one of {METHODS}")
  t0 = time.perf_counter()
  questions, input_errors = load_questions(config.questions)
  out = ResumableOutput(workdir)
  done = out.done
  todo = [q for q in questions if q["id"] not in done]
  log(f"collect: {len(questions)} questions, {len(done)} already done, {len(todo)} to go "
      f"({config.method}, policy {config.policy.kind})")
  is_correct = graders.get(config.questions.grader)
  if policy is None and todo:
    policy = make_policy(config.policy, todo)
  vocab = None
  if config.splitter.kind == "token_spans" and todo:
    vocab = splitter_vocab(config, policy)
  splitter = make_splitter(config.splitter, vocab)
  session = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "questions": 0, "rollouts": 0,
             "tokens": 0, "policy_batches": 0}
  crash_at = config.get("crash_after_records", -1)
  t_search = time.perf_counter()
  conc = max(1, config.concurrency)
  for start in range(0, len(todo), conc):
    chunk = todo[start:start + conc]
    by_id = {q["id"]: q for q in chunk}

    def on_done(qid, res):
      q = by_id[qid]
      recs = res.records(q["question"], qid, q["answer"])
      for r in recs:
        r["task"] = q.get("task", "")
      summary = dict(question_id=qid, **res.summary())
      session["questions"] += 1
      session["rollouts"] += res.cost.rollouts
      session["tokens"] += res.cost.tokens
      out.append(recs, summary, crash_before_summary=session["questions"] == crash_at)

    searches = {q["id"]: (q["question"], make_search(config, q, is_correct, splitter))
                for q in chunk}
    seeds = {qid: question_seed(config.seed, qid) for qid in by_id}   # per question: the
    _, calls = drive(searches, policy, seed=seeds, on_done=on_done)  # records ignore batching
    session["policy_batches"] += calls
    if (start // conc) % max(1, config.log_every) == 0:
      log(f"  {len(out.summaries)}/{len(questions)} questions, "
          f"{totals(out.summaries)['labelled_prefixes']} labelled prefixes")
  dt = time.perf_counter() - t_search
  session.update(wall_seconds=time.perf_counter() - t0, search_seconds=dt,
                 rollouts_per_s=session["rollouts"] / dt if dt > 0 else 0.0,
                 tokens_per_s=session["tokens"] / dt if dt > 0 else 0.0)
  stats_path = os.path.join(workdir, "stats.json")
  prev = read_json(stats_path) if os.path.exists(stats_path) else {}
  stats = dict(totals(out.summaries), method=config.method, policy=config.policy.kind,
               input_questions=len(questions), input_errors=input_errors,
               sessions=prev.get("sessions", []) + [session])
  stats["wall_seconds"] = float(sum(s["wall_seconds"] for s in stats["sessions"]))
  write_json_atomic(stats_path, stats)
  log(json.dumps({k: v for k, v in stats.items() if k not in ("sessions", "input_errors")}))
  return stats


if __name__ == "__main__":
  cli.config_main(collect, "configs/omegaprm_arith.py", "runs/omegaprm")
