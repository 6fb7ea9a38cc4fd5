"""JSONL exports of data sets, for `mode_jax.dataeval.report` / `prm_jax.label_report`.

    python -m mode_jax.dataeval.sources --source=synthetic --out=runs/dataeval/synthetic.jsonl
    python -m mode_jax.dataeval.sources --source=sni --sni_dir=../shared/data/sni \
        --out=runs/dataeval/sni.jsonl
    python -m mode_jax.dataeval.sources --source=prm_jax.collect:question_rows \
        --config=configs/omegaprm_arith.py --seed=1 --num=200 --out=runs/dataeval/test_questions.jsonl

synthetic / sni rows: {"text" (the prompt + target the MoDE mixtures train on, SNI with
`num_pos` positive examples), "instance" ("Input: x\\nOutput: y", the instance without its task
definition), "input", "output", "task", "category"}. The synthetic generators and the SNI files
use the project's own readers (`mode_jax.data.synthetic`, `mode_jax.data.sni`), so the rows are
what training sees. Other sources are "package.module:function" names called with the
`SourceArgs` (e.g. the questions an OmegaPRM collection config would search, with another
`--seed`: a held-out set for the leakage check).
"""

from __future__ import annotations

import dataclasses

from absl import flags

from mode_jax import cli, resolve
from mode_jax.atomic_io import write_jsonl_atomic
from mode_jax.data import sni, synthetic


def synthetic_rows(num_per_task: int = 100, seed: int = 0, split: str = "train") -> list[dict]:
  """Rows of the synthetic suite's `split` (`num_per_task` per task), as the mixtures see them."""
  rows = []
  for name in synthetic.TASK_NAMES:
    task = synthetic.get_task(name)
    for e in synthetic.examples(name, split, num_per_task, seed=seed):
      rows.append({"text": f"Definition: {task.definition}\n\nInput: {e['input']}\nOutput: "
                           f"{e['output']}",
                   "instance": f"Input: {e['input']}\nOutput: {e['output']}",
                   "input": e["input"], "output": e["output"], "task": name,
                   "category": "synthetic"})
  return rows


def sni_rows(sni_dir: str, split: str = "train", num_pos: int = 2) -> list[dict]:
  """Rows of the SNI files' `split` (within-task protocol), with `num_pos` positive examples."""
  rows = []
  for t in sni.task_splits(sni_dir, "within_task")[split]:
    cat = t["categories"][0] if t["categories"] else "unknown"
    for inst in t["instances"]:
      out = inst["outputs"][0]
      rows.append({"text": sni.prompt(t, inst["input"], num_pos) + out,
                   "instance": f"Input: {inst['input'].strip()}\nOutput: {out}",
                   "input": inst["input"], "output": out, "task": t["name"], "category": cat})
  return rows


@dataclasses.dataclass(frozen=True)
class SourceArgs:
  """What a source reads: split, rows per synthetic task, the SNI directory and positive
  examples, and (other sources) a config file, a number of rows and a seed."""
  split: str = "train"
  num_per_task: int = 100
  sni_dir: str = "../shared/data/sni"
  num_pos: int = 2
  config: str = ""
  num: int = 200
  seed: int = 0


SOURCES = {"synthetic": "mode_jax.dataeval.sources:synthetic_source",
           "sni": "mode_jax.dataeval.sources:sni_source"}


def synthetic_source(a: SourceArgs) -> list[dict]:
  """`synthetic_rows` of the args."""
  return synthetic_rows(a.num_per_task, a.seed, a.split)


def sni_source(a: SourceArgs) -> list[dict]:
  """`sni_rows` of the args."""
  return sni_rows(a.sni_dir, a.split, a.num_pos)


def define_flags(fv: flags.FlagValues) -> None:
  """The exporter's flags."""
  flags.DEFINE_string("source", None, "synthetic | sni | package.module:function",
                      flag_values=fv)
  flags.mark_flag_as_required("source", flag_values=fv)
  flags.DEFINE_string("out", None, "Output JSONL file (written atomically).", flag_values=fv)
  flags.mark_flag_as_required("out", flag_values=fv)
  for f in dataclasses.fields(SourceArgs):
    define = flags.DEFINE_integer if f.type in ("int", int) else flags.DEFINE_string
    define(f.name, f.default, f"SourceArgs.{f.name}", flag_values=fv)


def run(fv: flags.FlagValues) -> list[dict]:
  """Writes the rows of `--source` to `--out`; returns them."""
  fn = resolve.resolve(fv.source, SOURCES, "--source")
  rows = fn(SourceArgs(**{f.name: getattr(fv, f.name) for f in dataclasses.fields(SourceArgs)}))
  write_jsonl_atomic(fv.out, rows)
  print(f"wrote {len(rows)} rows to {fv.out}")
  return rows


def main(argv) -> list[dict]:
  """The export of `argv` (flags as on the command line), in-process."""
  return run(cli.parse_flags(define_flags, argv))


if __name__ == "__main__":
  cli.tool_main(define_flags, lambda fv, args: run(fv))
