"""How the learned user simulator's realism grows with the bootstrap data (RecLLM's simulator is
trained from a small amount of bootstrap data; the fourth paper judges such conversations).

    python -m crs_jax.realism_curve --config=configs/crs_synthetic.py --workdir=runs/crs_realism \
        --sizes=75,150,300,600

For each size N, the main job (`crs_jax.job`) in `<workdir>/n<N>` with N bootstrap sessions for
everything learned from them (vocabulary, base pretraining, the five adapted tasks), running
only the session sets the report needs: the teacher recommender with the rule simulator (the
reference), with the learned simulator, and with the learned simulator under forced intents
(controllability). The conversation report uses one fixed encoder for every N (hashed word
1-2-grams: each N has its own backbone, whose states would not be comparable). Each size
resumes as the job does; the curve is printed and written to `<workdir>/curve.md` / `.json`.
"""

from __future__ import annotations

import json
import os

from absl import flags

from crs_jax import job as job_lib
from mode_jax import atomic_io, cli

SYSTEMS = ("teacher", "teacher + LLM simulator", "teacher + LLM simulator, forced intents")
COLUMNS = (("discriminator AUC", lambda r, m: r["distribution"]["discriminator_auc"]["value"]),
           ("MAUVE", lambda r, m: r["distribution"]["mauve"]["mean"]),
           ("distinct-2", lambda r, m: r["conversations"]["generated"]["distinct_2"]),
           ("duplicate share",
            lambda r, m: r["conversations"]["generated"]["duplicates"]["duplicate_share"]),
           ("intents covered", lambda r, m: r["conversations"]["intent_coverage"]["distinct"]),
           ("goal adherence", lambda r, m: m["teacher + LLM simulator"]["goal_adherence"]),
           ("acceptance agreement",
            lambda r, m: m["teacher + LLM simulator"]["acceptance_agreement"]),
           ("target leak rate", lambda r, m: m["teacher + LLM simulator"]["target_leak_rate"]),
           ("intent accuracy (forced)",
            lambda r, m: m["teacher + LLM simulator, forced intents"]["intent_accuracy"]))


def size_config(config, n: int):
  """The main job's config with `n` bootstrap sessions and only the report's session sets."""
  c = config.copy_and_resolve_references()
  c.unlock()
  c.data.crs.num_sessions = c.base.data.crs.num_sessions = n
  c.report.encoder = "hashing"
  c.sessions.systems = SYSTEMS
  c.sessions.baselines = ("teacher",)
  c.sessions.variants = ()
  c.lock()
  return c


def curve(config, workdir: str, sizes) -> list[dict]:
  """Runs (or resumes) the job for each size; one row of realism measures per size."""
  rows = []
  for n in sizes:
    wd = os.path.join(workdir, f"n{n}")
    print(f"==== bootstrap size {n}: {wd}", flush=True)
    job_lib.crs_synthetic(size_config(config, n), wd)
    rep = atomic_io.read_json(os.path.join(wd, "report", "report.json"))
    res = atomic_io.read_json(os.path.join(wd, "results.json"))
    row = {"bootstrap_sessions": n, "workdir": wd}
    row.update({name: fn(rep, res["metrics"]) for name, fn in COLUMNS})
    d = rep["distribution"]["discriminator_auc"]
    row["discriminator AUC 95% interval"] = [d["lo"], d["hi"]]
    rows.append(row)
  return rows


def markdown(rows: list[dict]) -> str:
  """The curve as a markdown table."""
  head = "| bootstrap sessions | " + " | ".join(n for n, _ in COLUMNS) + " |"
  out = [head, "|" + "---|" * (len(COLUMNS) + 1)]
  for r in rows:
    cells = [f"{r[n]:.3f}" if isinstance(r[n], float) else str(r[n]) for n, _ in COLUMNS]
    out.append(f"| {r['bootstrap_sessions']} | " + " | ".join(cells) + " |")
  return "\n".join(out)


def main(config, workdir: str, sizes) -> list[dict]:
  """The curve over `sizes` (bootstrap session counts): printed, and written to
  `<workdir>/curve.md` / `curve.json`."""
  try:
    sizes = [int(x) for x in sizes]
  except ValueError:
    raise ValueError(f"--sizes must be integers, got {sizes}") from None
  rows = curve(config, workdir, sizes)
  md = markdown(rows)
  atomic_io.write_json_atomic(os.path.join(workdir, "curve.json"), rows)
  with atomic_io.atomic_file(os.path.join(workdir, "curve.md")) as f:
    f.write(md + "\n")
  print(md)
  print(json.dumps(rows))
  return rows


if __name__ == "__main__":
  _SIZES = flags.DEFINE_list("sizes", ["75", "150", "300", "600"], "Bootstrap session counts.")
  cli.config_main(lambda config, workdir: main(config, workdir, _SIZES.value),
                  "configs/crs_synthetic.py", "runs/crs_realism")
