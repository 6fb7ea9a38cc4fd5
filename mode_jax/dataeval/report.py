"""A quality report for a generated dataset, optionally against a reference set.

    python -m mode_jax.dataeval.report --generated=A.jsonl [--reference=B.jsonl] --out=DIR \\
        [--text_field=text] [--encoder=backbone|backbone:<preset>|minilm|hashing] [--test=T.jsonl]

writes DIR/report.md, DIR/report.json and PNG plots (DIR is replaced atomically); the numbers
are `compare.compare_sets`'s. Process-supervision records (OmegaPRM / Math-Shepherd) add the
label-quality section with `python -m prm_jax.label_report` (the same flags plus its own).

Text of an item: the `--text_field` values (comma-separated names) joined; a list value (a
record's `steps`) is joined without separator. Lines that are not JSON objects or lack the text
field are reported with file and line number and skipped.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

from absl import flags

from mode_jax import cli
from mode_jax.atomic_io import atomic_directory
from mode_jax.dataeval import compare, embed, render
from mode_jax.dataeval.items import read_items


def define_flags(fv: flags.FlagValues) -> None:
  """The report's flags on `fv` (applications add their own beside them)."""
  flags.DEFINE_string("generated", None, "JSONL of the generated items.", flag_values=fv)
  flags.mark_flag_as_required("generated", flag_values=fv)
  flags.DEFINE_string("reference", "", "JSONL of the reference items.", flag_values=fv)
  flags.DEFINE_string("test", "", "JSONL of test items for the leakage check.", flag_values=fv)
  flags.DEFINE_string("out", None, "Output directory (replaced atomically).", flag_values=fv)
  flags.mark_flag_as_required("out", flag_values=fv)
  flags.DEFINE_string("text_field", "text", "Comma-separated text fields.", flag_values=fv)
  flags.DEFINE_string("reference_text_field", "", "Default: --text_field.", flag_values=fv)
  flags.DEFINE_string("test_text_field", "question", "Text field of --test.", flag_values=fv)
  for name, default in (("question", "question"), ("qid", "question_id"), ("answer", "answer"),
                        ("task", "task"), ("category", "category"),
                        ("difficulty", "difficulty")):
    flags.DEFINE_string(f"{name}_field", default, f"The {name} field.", flag_values=fv)
  flags.DEFINE_string("encoder", "backbone", "backbone[:<preset>] | minilm | hashing.",
                      flag_values=fv)
  flags.DEFINE_string("encoder_checkpoint", "", "HF-format dir for 'backbone'.", flag_values=fv)
  flags.DEFINE_integer("max_items", 1500, "Common sample size of the set-level metrics.",
                       flag_values=fv)
  flags.DEFINE_integer("n_boot", 200, "Resamples of the intervals.", flag_values=fv)
  flags.DEFINE_integer("mauve_seeds", 5, "k-means seeds of MAUVE.", flag_values=fv)
  flags.DEFINE_integer("leak_n", 13, "Word n-gram of the leakage check.", flag_values=fv)
  flags.DEFINE_integer("seed", 0, "Seed of every random choice.", flag_values=fv)


def options(fv: flags.FlagValues) -> compare.Options:
  """`compare.Options` of the parsed flags."""
  return compare.Options(
      generated_path=fv.generated, reference_path=fv.reference,
      question_field=fv.question_field, qid_field=fv.qid_field, answer_field=fv.answer_field,
      task_field=fv.task_field, category_field=fv.category_field,
      difficulty_field=fv.difficulty_field, max_items=fv.max_items, n_boot=fv.n_boot,
      mauve_seeds=fv.mauve_seeds, leak_n=fv.leak_n, seed=fv.seed)


def run(fv: flags.FlagValues, sections: Sequence[compare.Section] = (),
        log: Callable = print) -> dict:
  """Reads the items the flags name, compares them and writes the report; returns the result."""
  errors: list = []
  gen = read_items(fv.generated, fv.text_field.split(","), errors)
  ref = read_items(fv.reference, (fv.reference_text_field or fv.text_field).split(","),
                   errors) if fv.reference else []
  test = read_items(fv.test, fv.test_text_field.split(","), errors) if fv.test else []
  for e in errors[:20]:
    log(f"skipping input line: {e}")
  if not gen:
    raise SystemExit(f"{fv.generated}: no usable items ({len(errors)} bad lines)")
  encoder = embed.get_encoder(fv.encoder, checkpoint=fv.encoder_checkpoint)
  res = compare.compare_sets(gen, ref, test, options(fv), encoder, sections, log=log)
  res["input_errors"] = errors
  with atomic_directory(fv.out) as tmp:
    render.write(res, tmp, sections)
  log(f"wrote {os.path.join(fv.out, 'report.md')}")
  return res


def main(argv: Sequence[str], log: Callable = print) -> dict:
  """The report of `argv` (flags as on the command line), in-process."""
  return run(cli.parse_flags(define_flags, argv), log=log)


if __name__ == "__main__":
  cli.tool_main(define_flags, lambda fv, args: run(fv))
