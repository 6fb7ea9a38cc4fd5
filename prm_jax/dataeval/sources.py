"""JSONL exports of the project's data sets, for `prm_jax.dataeval.report`.

    python -m prm_jax.dataeval.sources synthetic --out=runs/dataeval/synthetic.jsonl
    python -m prm_jax.dataeval.sources sni --sni_dir=../shared/data/sni --out=runs/dataeval/sni.jsonl
    python -m prm_jax.dataeval.sources arithmetic --config=configs/omegaprm_arith.py \\
        --seed=1 --num=200 --out=runs/dataeval/test_questions.jsonl

synthetic / sni rows: {"text" (the prompt + target the MoDE mixtures train on, SNI with
`num_pos` positive examples), "instance" ("Input: x\\nOutput: y", the instance without its task
definition), "input", "output", "task", "category"}. The synthetic generators and the SNI files
use the project's own readers (`mode_jax.data.synthetic`, `mode_jax.data.sni`), so the rows are
what training sees. arithmetic: the questions a collection config would search, with another
`--seed` (a held-out set for the leakage check).
"""

from __future__ import annotations

import argparse

from mode_jax.atomic_io import write_jsonl_atomic


def synthetic_rows(num_per_task: int = 100, seed: int = 0, split: str = "train") -> list[dict]:
  from mode_jax.data import synthetic
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
  from mode_jax.data import sni
  rows = []
  for t in sni.task_splits(sni_dir, "within_task")[split]:
    cat = t["categories"][0] if t["categories"] else "unknown"
    for inst in t["instances"]:
      out = inst["outputs"][0]
      rows.append({"text": sni.prompt(t, inst["input"], num_pos) + out,
                   "instance": f"Input: {inst['input'].strip()}\nOutput: {out}",
                   "input": inst["input"], "output": out, "task": t["name"], "category": cat})
  return rows


def arithmetic_rows(config_path: str, num: int, seed: int) -> list[dict]:
  from mode_jax.config_files import load_module
  from prm_jax.collect import load_questions
  c = load_module(config_path).get_config()
  c.questions.num, c.questions.seed = num, seed
  return load_questions(c.questions)[0]


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("source", choices=["synthetic", "sni", "arithmetic"])
  ap.add_argument("--out", required=True)
  ap.add_argument("--split", default="train")
  ap.add_argument("--num_per_task", type=int, default=100)
  ap.add_argument("--sni_dir", default="../shared/data/sni")
  ap.add_argument("--num_pos", type=int, default=2)
  ap.add_argument("--config", default="configs/omegaprm_arith.py")
  ap.add_argument("--num", type=int, default=200)
  ap.add_argument("--seed", type=int, default=0)
  a = ap.parse_args(argv)
  if a.source == "synthetic":
    rows = synthetic_rows(a.num_per_task, a.seed, a.split)
  elif a.source == "sni":
    rows = sni_rows(a.sni_dir, a.split, a.num_pos)
  else:
    rows = arithmetic_rows(a.config, a.num, a.seed)
  write_jsonl_atomic(a.out, rows)
  print(f"wrote {len(rows)} rows to {a.out}")
  return rows


if __name__ == "__main__":
  main()
