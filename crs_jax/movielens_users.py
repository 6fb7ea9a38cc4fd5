"""MovieLens-grounded users (iEvaLM-CRS style) and sessions of every baseline with them.

A user's held-out 4-5 star movies (`movielens.holdout`: the latest 20% of their liked ratings
by time, after at least 5 earlier ratings) are their target set: they accept exactly those
movies. What they know and say (the goal the simulator plays) is read off the targets, never
their titles:

- likes: per attribute (genre, decade), the values held by at least half of the targets (at
  most two, weight = that share), else the single most frequent one;
- dislikes: the one genre the user rated lowest in their history (mean <= 2 over >= 2
  ratings) that no target has;
- history: the movies rated before the first target (never recommended by the baselines here,
  `skip_history`); profile: `movielens.profile_text` of it.

The judgement's acceptable set is the targets; its `target` (for target_hit@k) is the most
popular target in the histories' counts. The simulator is the rule user
(`crs_jax.rule_simulator`), which reveals liked values, says what is wrong with a
recommendation and never names an item the system has not shown.

    python -m crs_jax.movielens_users --workdir=runs/crs_movielens [--num_users=300] [--slate=3]
    python -m crs_jax.movielens_users --workdir=runs/crs_movielens --systems=llm,rule \
        --served_url=http://127.0.0.1:8000 --num_users=50       # RecLLM few-shot on a server

Systems (all skip the user's history): random, popularity (history counts), rule (asks genre
and decade, then the search API's best match), profile (the offline MovieLens ranker:
popularity re-weighted by the liked-genre profile, `movielens.rank_for_users`; it ignores the
conversation), oracle (recommends the targets, most popular first). Every system's sessions are
in `<workdir>/sessions/<system>.jsonl` (resumable), the table in `report.md` / `report.json`:
success@T with a 95% bootstrap interval over users, turns to success, per-recommendation-turn
hit@k / NDCG@k / target_hit@k against the targets not yet shown.
"""

from __future__ import annotations

import collections
import os
from typing import Optional, Sequence

from absl import flags
import ml_collections
import numpy as np

from crs_jax import baselines, few_shot, goals as goals_lib, llm, metrics, movielens
from crs_jax import rule_simulator
from crs_jax import catalogue as catalogue_lib
from crs_jax import interfaces
from crs_jax import session as session_lib
from mode_jax import atomic_io, cli
from mode_jax.dataeval import stats

SYSTEMS = ("random", "popularity", "rule", "profile", "oracle")


def goal_of(targets: Sequence[str], history: Sequence[movielens.Rating],
            cat: catalogue_lib.Catalogue, *, min_share: float = 0.5,
            max_likes: int = 2) -> goals_lib.Goal:
  """The goal a grounded user plays (module doc): liked values read off the targets, one
  disliked genre from the history's low ratings."""
  by_id = cat.by_id
  likes = {}
  for a in cat.schema.names:
    counts = collections.Counter(v for i in targets for v in by_id[i].values(a))
    top = [(v, c / len(targets)) for v, c in sorted(counts.items(), key=lambda kv: (-kv[1],
                                                                                     kv[0]))]
    keep = [(v, w) for v, w in top if w >= min_share][:max_likes] or top[:1]
    if keep:
      likes[a] = {v: round(w, 4) for v, w in keep}
  held = {v for i in targets for v in by_id[i].values("genre")}
  scores: dict = {}
  for r in history:
    for g in by_id[r.item].values("genre"):
      scores.setdefault(g, []).append(r.rating)
  low = sorted((float(np.mean(s)), g) for g, s in scores.items()
               if len(s) >= 2 and np.mean(s) <= 2 and g not in held)
  dislikes = {"genre": {low[0][1]: 1.0}} if low else {}
  return goals_lib.Goal(constraints={}, likes=likes, dislikes=dislikes, accept_k=len(targets))


def judgement_of(targets, cat: catalogue_lib.Catalogue) -> goals_lib.Judgement:
  """Accepts exactly the targets; ranked = targets by popularity (then id)."""
  by_id = cat.by_id
  ranked = tuple(sorted(targets, key=lambda i: (-by_id[i].popularity, i)))
  util = collections.defaultdict(float, {i: 1.0 for i in ranked})
  return goals_lib.Judgement(utilities=util, ranked=ranked, acceptable=frozenset(ranked),
                             target=ranked[0])


def grounded_users(ml: movielens.MovieLens, split: movielens.Split,
                   cat: catalogue_lib.Catalogue, *, num_users: Optional[int] = None,
                   seed: int = 0) -> list[session_lib.User]:
  """One `session.User` per user with held-out targets (ids in numeric order; `num_users` of
  them drawn by `seed` when given)."""
  ids = sorted(split.targets, key=lambda u: int(u) if u.isdigit() else u)
  if num_users is not None and num_users < len(ids):
    pick = np.random.default_rng(seed).choice(len(ids), num_users, replace=False)
    ids = [ids[i] for i in sorted(pick)]
  out = []
  for u in ids:
    targets = sorted(split.targets[u])
    hist = split.history[u]
    out.append(session_lib.User(
        goal=goal_of(targets, hist, cat), judgement=judgement_of(targets, cat),
        history=tuple(r.item for r in hist), profile=movielens.profile_text(hist, ml.movies),
        user_id=u))
  return out


class ListRecommender(baselines.PopularityRecommender):
  """Recommends, each turn, the first item of the session user's precomputed list not shown
  (nor in their history); the list's next 10 are its ranking. Users without a list, or past
  its end, get the popularity order."""

  def __init__(self, catalogue, lists: dict, **kw):
    super().__init__(catalogue, **kw)
    self.lists = lists

  def turn(self, s: interfaces.Session):
    """The user's list's next item, else the most popular one left."""
    shown = self.unavailable(s)
    ranked = [i for i in self.lists.get(s.user_id, ()) if i not in shown][:10]
    if not ranked:
      return super().turn(s)
    return self._recommend(s, ranked[0], retrieved=ranked)


def make_system(name: str, cat: catalogue_lib.Catalogue, split: movielens.Split,
                ml: movielens.MovieLens, served=None, slate: int = 1):
  """Recommender `name` of `SYSTEMS` (or "llm": RecLLM few-shot prompted on the `served`
  block's server, `crs_jax.few_shot`) for grounded users."""
  if name == "llm":
    if served is None or not served.get("url"):
      raise ValueError("system 'llm' needs --served_url (an OpenAI-compatible server)")
    return llm.LLMRecommender(few_shot.served_model(served, cat), cat, slate=slate)
  if name == "profile":
    return ListRecommender(cat, movielens.rank_for_users(split, ml.movies, "profile", k=200),
                           skip_history=True, slate=slate)
  if name not in baselines.BASELINES:
    raise ValueError(f"unknown system {name!r}; choose from {list(SYSTEMS)}")
  return baselines.BASELINES[name](cat, skip_history=True, slate=slate)


def summarize(records: Sequence[dict], *, n_boot: int = 1000, seed: int = 0) -> dict:
  """success@T (with bootstrap intervals over users), turns and per-turn ranking metrics."""
  out = metrics.success_metrics(records)
  for t in (1, 4, 8):
    ok = np.array([r.get("success_turn") is not None and r["success_turn"] <= t
                   for r in records], np.float64)
    e = stats.bootstrap(lambda idx: float(ok[idx].mean()), len(ok), n_boot=n_boot, seed=seed)
    out[f"success@{t}_ci"] = [e["lo"], e["hi"]]
  out.update(metrics.ranking_metrics(records, ks=(1, 10)))
  out["users"] = len(records)
  out["mean_targets"] = float(np.mean([len(r["acceptable"]) for r in records]))
  return out


COLUMNS = ("success@1", "success@4", "success@8", "mean_turns_to_success", "ranking_hit@10",
           "ranking_ndcg@10", "target_hit@10")


def table(results: dict) -> str:
  """Markdown table of `summarize` results per system."""
  rows = ["| system | users | " + " | ".join(COLUMNS) + " |",
          "|---|---|" + "---|" * len(COLUMNS)]
  for name, m in results.items():
    cells = []
    for k in COLUMNS:
      v = m.get(k, float("nan"))
      ci = m.get(f"{k}_ci")
      cells.append("" if v != v else f"{v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
    rows.append(f"| {name} | {m['users']} | " + " | ".join(cells) + " |")
  return "\n".join(rows)


def run(workdir: str, *, systems: Sequence[str] = SYSTEMS, num_users: Optional[int] = None,
        seed: int = 0, max_turns: int = 8, served=None, slate: int = 1, log=print) -> dict:
  """Sessions of every system with the grounded users; returns {system: summary}."""
  ml = movielens.load()
  split = movielens.holdout(ml.ratings, min_rating=4, fraction=0.2)
  cat = movielens.catalogue(ml, split)
  users = grounded_users(ml, split, cat, num_users=num_users, seed=seed)
  sim = rule_simulator.RuleSimulator(cat)
  results = {}
  for name in systems:
    rec = make_system(name, cat, split, ml, served, slate)
    records = session_lib.run_sessions(
        rec, sim, cat, users=users, seed=seed, max_turns=max_turns,
        out_path=os.path.join(workdir, "sessions", f"{name}.jsonl"))
    results[name] = summarize(records)
    log(f"{name}: success@8 {results[name]['success@8']:.3f}")
  report = {"users": len(users), "max_turns": max_turns, "seed": seed, "slate": slate,
            "catalogue_items": len(cat), "results": results}
  atomic_io.write_json_atomic(os.path.join(workdir, "report.json"), report)
  with atomic_io.atomic_file(os.path.join(workdir, "report.md")) as f:
    f.write(table(results) + "\n")
  return results


FLAGS = flags.FlagValues()
flags.DEFINE_string("workdir", None, "output folder (sessions, report)", flag_values=FLAGS)
flags.DEFINE_integer("num_users", None, "users drawn by --seed (default: all 942)",
                     flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "user draw and simulator seed", flag_values=FLAGS)
flags.DEFINE_integer("max_turns", 8, "system turns per session", flag_values=FLAGS)
flags.DEFINE_integer("slate", 1, "movies shown per recommendation turn", flag_values=FLAGS)
flags.DEFINE_list("systems", list(SYSTEMS), "systems to run (and 'llm' with --served_url)",
                  flag_values=FLAGS)
flags.DEFINE_string("served_url", "", "OpenAI-compatible server for the 'llm' system",
                    flag_values=FLAGS)
flags.DEFINE_string("served_model", "gemma3_270m", "the served model's name", flag_values=FLAGS)
flags.DEFINE_bool("served_chat", False, "use /v1/chat/completions", flag_values=FLAGS)
flags.DEFINE_float("served_timeout", 600.0, "seconds per request to the server",
                   flag_values=FLAGS)


def main(argv=None):
  """Runs `run` with the flags and prints the table."""
  cli.parse_argv(FLAGS, argv)
  if not FLAGS.workdir:
    raise SystemExit("--workdir is required")
  served = ml_collections.ConfigDict(dict(url=FLAGS.served_url, model=FLAGS.served_model,
                                          chat=FLAGS.served_chat, timeout=FLAGS.served_timeout))
  results = run(FLAGS.workdir, systems=FLAGS.systems, num_users=FLAGS.num_users,
                seed=FLAGS.seed, max_turns=FLAGS.max_turns, served=served, slate=FLAGS.slate)
  print(table(results))
  return results


if __name__ == "__main__":
  main()
