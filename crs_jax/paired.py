"""Paired comparison of two session sets run on the same session seeds (same users, goals and
simulator randomness; only the recommender or its model differs):

    python -m crs_jax.paired runs/a/sessions/RecLLM.jsonl runs/b/sessions/RecLLM.jsonl [...]

For each later file against the first: success@T of both, the mean paired difference with a
95% percentile-bootstrap interval over sessions (resampled with replacement, 2,000 times, seed
0), the sessions gained and lost, and the exact two-sided sign test (McNemar's exact test) on
those discordant sessions. Only session ids present in both files are compared (their number
is printed); a file with no common id is an error. With `--pooled` the files are (A, B) pairs,
one per training seed (A0 B0 A1 B1 ...): the difference pooled over (seed, session) pairs, with
an interval from resampling seeds and then sessions within them (training-seed variance
included) and one from resampling sessions only.
"""

from __future__ import annotations

import json
from typing import Sequence

from absl import flags
import numpy as np
from scipy import stats

from crs_jax import session as session_lib
from mode_jax import cli


def successes(records: Sequence[dict], turns: int) -> dict:
  """session id -> 1 if the user accepted a recommendation by system turn `turns`, else 0."""
  return {r["session_id"]: int(r.get("success_turn") is not None and r["success_turn"] <= turns)
          for r in records}


def _paired_successes(a: Sequence[dict], b: Sequence[dict], turns: int):
  """(a's, b's) success@turns on their shared session ids, in id order."""
  sa, sb = successes(a, turns), successes(b, turns)
  ids = sorted(set(sa) & set(sb))
  if not ids:
    raise ValueError("paired comparison: the two session sets share no session id")
  return (np.array([sa[i] for i in ids], np.float64),
          np.array([sb[i] for i in ids], np.float64))


def paired_success(a: Sequence[dict], b: Sequence[dict], *, turns: int = 8,
                   resamples: int = 2000, seed: int = 0) -> dict:
  """Paired success@turns of session sets a and b on their shared session ids: difference with a
  bootstrap interval, gained / lost sessions and an exact sign test."""
  x, y = _paired_successes(a, b, turns)
  d = y - x
  rng = np.random.default_rng(seed)
  boot = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(1)
  gained, lost = int((d > 0).sum()), int((d < 0).sum())
  p = stats.binomtest(gained, gained + lost, 0.5).pvalue if gained + lost else 1.0
  return {"sessions": len(d), f"a_success@{turns}": float(x.mean()),
          f"b_success@{turns}": float(y.mean()), "difference": float(d.mean()),
          "lo": float(np.quantile(boot, 0.025)), "hi": float(np.quantile(boot, 0.975)),
          "gained": gained, "lost": lost, "sign_test_p": float(p)}


def pooled_success(pairs: Sequence[tuple[Sequence[dict], Sequence[dict]]], *, turns: int = 8,
                   resamples: int = 2000, seed: int = 0) -> dict:
  """Paired success@turns pooled over training seeds: `pairs` holds one (a, b) pair of session
  sets per seed (each pair on the same session ids). The difference is the mean over all
  (seed, session) pairs; "lo" / "hi" come from a two-level bootstrap (seeds resampled, then
  sessions within each drawn seed), so the interval includes training-seed variance;
  "lo_sessions" / "hi_sessions" resample sessions only (the seeds held fixed)."""
  if not pairs:
    raise ValueError("pooled comparison: no (a, b) pairs")
  per = [paired_success(a, b, turns=turns, resamples=resamples, seed=seed) for a, b in pairs]
  diffs = [y - x for x, y in (_paired_successes(a, b, turns) for a, b in pairs)]
  rng = np.random.default_rng(seed)
  two, one = np.empty(resamples), np.empty(resamples)
  for r in range(resamples):
    picked = rng.integers(0, len(diffs), size=len(diffs))
    two[r] = np.mean(np.concatenate([diffs[k][rng.integers(0, len(diffs[k]), len(diffs[k]))]
                                     for k in picked]))
    one[r] = np.mean(np.concatenate([d[rng.integers(0, len(d), len(d))] for d in diffs]))
  gained = sum(r["gained"] for r in per)
  lost = sum(r["lost"] for r in per)
  p = stats.binomtest(gained, gained + lost, 0.5).pvalue if gained + lost else 1.0
  n = sum(r["sessions"] for r in per)
  return {"seeds": len(pairs), "sessions": n,
          f"a_success@{turns}": sum(r[f"a_success@{turns}"] * r["sessions"] for r in per) / n,
          f"b_success@{turns}": sum(r[f"b_success@{turns}"] * r["sessions"] for r in per) / n,
          "difference": float(np.mean(np.concatenate(diffs))),
          "lo": float(np.quantile(two, 0.025)), "hi": float(np.quantile(two, 0.975)),
          "lo_sessions": float(np.quantile(one, 0.025)),
          "hi_sessions": float(np.quantile(one, 0.975)),
          "gained": gained, "lost": lost, "sign_test_p": float(p), "per_seed": per}


def main(argv=None):
  """Paired success@T of session sets: `python -m crs_jax.paired A.jsonl B.jsonl [C.jsonl ...]`
  (positional files; the first is the reference). Prints a table and one JSON line."""
  p = flags.FlagValues()
  flags.DEFINE_integer("turns", 8, "success within this many turns", flag_values=p)
  flags.DEFINE_bool("pooled", False, "the files are (A, B) pairs, one per training seed: "
                    "A0 B0 A1 B1 ...; pooled difference with a seeds-then-sessions bootstrap",
                    flag_values=p)
  args, files = cli.parse_argv(p, argv, positional=True)
  if len(files) < 2:
    raise flags.Error("give at least two session files (the first is the reference)")
  if args.pooled:
    if len(files) % 2:
      raise flags.Error(f"--pooled takes (A, B) pairs: {len(files)} files given")
    pairs = [(session_lib.read_sessions(files[k]), session_lib.read_sessions(files[k + 1]))
             for k in range(0, len(files), 2)]
    r = pooled_success(pairs, turns=args.turns)
    print(f"pooled over {r['seeds']} seeds, {r['sessions']} (seed, session) pairs: "
          f"A {r[f'a_success@{args.turns}']:.3f}, B {r[f'b_success@{args.turns}']:.3f}, "
          f"B - A {r['difference']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}] (seeds and sessions "
          f"resampled; sessions only [{r['lo_sessions']:+.3f}, {r['hi_sessions']:+.3f}]), "
          f"{r['gained']} gained / {r['lost']} lost, sign test p {r['sign_test_p']:.3g}")
    print(json.dumps(r))
    return r
  ref = session_lib.read_sessions(files[0])
  out = {}
  print(f"| B vs A = {files[0]} | sessions | A success@{args.turns} | "
        f"B success@{args.turns} | B - A [95% interval] | gained / lost | sign test p |")
  print("|---|---|---|---|---|---|---|")
  for f in files[1:]:
    r = paired_success(ref, session_lib.read_sessions(f), turns=args.turns)
    out[f] = r
    print(f"| {f} | {r['sessions']} | {r[f'a_success@{args.turns}']:.3f} | "
          f"{r[f'b_success@{args.turns}']:.3f} | {r['difference']:+.3f} [{r['lo']:+.3f}, "
          f"{r['hi']:+.3f}] | {r['gained']} / {r['lost']} | {r['sign_test_p']:.3g} |")
  print(json.dumps(out))
  return out


if __name__ == "__main__":
  main()
