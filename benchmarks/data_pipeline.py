"""Throughput of the packed training stream (examples/s and tokens/s after packing):

    python -m benchmarks.data_pipeline [--batches 200] [--sni_dir ../shared/data/sni]

Rows: the synthetic mixture (14 tasks, byte vocabulary, inputs 192 / targets 32, batch 32) and
the shared SNI files (def + 2 pos, inputs 1024 / targets 64, batch 8), each read once cold
(first batch, including the graph build) and then steadily for `--batches` batches. A packed
"token" is a non-padding position; "examples" counts packed segments.
"""

from __future__ import annotations

import os
import time

from absl import flags
import numpy as np

from mode_jax import cli
from mode_jax.data import tasks
from mode_jax.data.vocab import make_vocab

_DEFAULT_SNI = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "sni")


def measure(name: str, lengths: dict, batch: int, batches: int) -> dict:
  ds = tasks.get_dataset(name, "train", lengths, batch_size=batch, seed=0)
  it = ds.as_numpy_iterator()
  t0 = time.perf_counter()
  next(it)
  first = time.perf_counter() - t0
  n_ex = n_tok = 0
  t0 = time.perf_counter()
  for _ in range(batches):
    b = next(it)
    seg = b["decoder_segment_ids"]
    n_tok += int((seg > 0).sum())
    n_ex += int(sum(len(np.unique(r[r > 0])) for r in seg))
  dt = time.perf_counter() - t0
  width = sum(lengths.values())
  return {"first_batch_s": first, "examples_per_s": n_ex / dt, "tokens_per_s": n_tok / dt,
          "fill": n_tok / (batches * batch * width)}


def main(argv=None):
  ap = flags.FlagValues()
  flags.DEFINE_integer("batches", 200, "", flag_values=ap)
  flags.DEFINE_string("sni_dir", _DEFAULT_SNI, "", flag_values=ap)
  args = cli.parse_argv(ap, argv)
  vocab = make_vocab("bytes")
  rows = []
  names = tasks.make_synthetic_tasks(vocab)
  mix = tasks.make_mixture("bench_syn_mix", names)
  rows.append(("synthetic mixture", measure(mix, {"inputs": 192, "targets": 32}, 32,
                                            args.batches)))
  if os.path.isdir(args.sni_dir):
    sni_names = tasks.make_sni_tasks(args.sni_dir, vocab)["train"]
    sni_mix = tasks.make_mixture("bench_sni_mix", sni_names)
    rows.append(("SNI shared files", measure(sni_mix, {"inputs": 1024, "targets": 64}, 8,
                                             args.batches)))
  else:
    print(f"(SNI row skipped: {args.sni_dir} not found)")
  print(f"{'stream':20s} {'first batch s':>14s} {'examples/s':>11s} {'tokens/s':>10s} "
        f"{'fill':>6s}")
  for name, r in rows:
    print(f"{name:20s} {r['first_batch_s']:14.2f} {r['examples_per_s']:11.0f} "
          f"{r['tokens_per_s']:10.0f} {r['fill']:6.1%}")


if __name__ == "__main__":
  main()
