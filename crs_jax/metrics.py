"""Exact session metrics, computed from session records and the catalogue (hidden goals are
known, so nothing here is estimated by a model).

- success@T: share of sessions whose user accepted an item within T system turns; mean turns
  to success over the successful ones.
- recall@k / NDCG@k of a ranked list against the acceptable set R (binary relevance):
  recall@k = |top_k ∩ R| / min(|R|, k) (capped, so 1.0 is reachable when R has ties beyond
  k), NDCG@k = DCG@k / IDCG@k with gain 1 for items in R and log2(rank + 1) discounts. Computed
  for the session's recommended items (in order shown) and for the candidates the last
  retrieval returned.
- explanation faithfulness: an explanation's claims are the attribute values it names (titles
  masked; `crs_jax.nlu`); a claim is true when the item has that value (negated: does not);
  faithful = every claim true. `grounded` = at least one claim.
- simulator controllability: intent accuracy against the forced intents, intent-text agreement
  (the utterance reads as the intent it claims, `nlu.user_intent`), goal adherence (a
  user turn names only values the user holds, and negates only ones it does not), target leaks
  (the target's title in a user turn before the system showed it), and acceptance agreement
  (accept/reject reactions vs the hidden acceptable set).
- popularity bias of recommendations: Gini coefficient of per-item recommendation counts over
  the catalogue, and the long-tail share (recommended items outside the most popular 20%).
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import numpy as np

from crs_jax import catalogue as catalogue_lib
from crs_jax import goals as goals_lib
from crs_jax import nlu
from mode_jax.dataeval import stats


def recall_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
  """Share of `relevant` items in the first `k` of `ranked` (nan without relevant items)."""
  rel = set(relevant)
  if not rel:
    return 0.0
  return len(set(ranked[:k]) & rel) / min(len(rel), k)


def ndcg_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
  """NDCG@k of `ranked` against binary relevance."""
  rel = set(relevant)
  dcg = sum(1.0 / math.log2(i + 2) for i, x in enumerate(ranked[:k]) if x in rel)
  idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), k)))
  return dcg / idcg if idcg else 0.0


def _system(rec):
  return [t for t in rec["turns"] if t["role"] == "system"]


def _user(rec):
  return [t for t in rec["turns"] if t["role"] == "user"]


def success_metrics(records: Sequence[dict], turns=(1, 2, 4, 8)) -> dict:
  """success@T (accepted within T system turns) and mean turns to success."""
  n = max(len(records), 1)
  st = [r.get("success_turn") for r in records]
  out = {f"success@{t}": sum(1 for x in st if x is not None and x <= t) / n for t in turns}
  ok = [x for x in st if x is not None]
  out["success"] = len(ok) / n
  out["mean_turns_to_success"] = float(np.mean(ok)) if ok else float("nan")
  return out


def ranking_metrics(records: Sequence[dict], ks=(1, 5, 10)) -> dict:
  """NDCG and recall at `ks` of the recommended and the retrieved items against each session's
  acceptable set."""
  out = {}
  for name, lists in (("recommended", [_shown(r) for r in records]),
                      ("retrieval", [_last_retrieved(r) for r in records])):
    pairs = [(l, r["acceptable"]) for l, r in zip(lists, records) if l]
    if not pairs:
      continue
    for k in ks:
      out[f"{name}_recall@{k}"] = float(np.mean([recall_at_k(l, rel, k) for l, rel in pairs]))
      out[f"{name}_ndcg@{k}"] = float(np.mean([ndcg_at_k(l, rel, k) for l, rel in pairs]))
  return out


def _shown(rec) -> list:
  out = []
  for t in _system(rec):
    out.extend(i for i in t.get("items", ()) if i not in out)
  return out


def _last_retrieved(rec) -> list:
  lists = [t["retrieved"] for t in _system(rec) if t.get("retrieved")]
  return list(lists[-1]) if lists else []


def claim_check(text: str, it: catalogue_lib.Item, titles: Iterable[str]) -> tuple[int, int]:
  """(true claims, claims) of an explanation of item `it`."""
  ms = nlu.mentions(nlu.mask_titles(text, titles))
  true = sum(1 for m in ms if (it.value(m.attr) == m.value) != m.negated)
  return true, len(ms)


def faithfulness(records: Sequence[dict], cat: catalogue_lib.Catalogue) -> dict:
  """Share of explanations whose attribute claims are all true of the recommended item."""
  by_id, titles = cat.by_id, [it.title for it in cat.items]
  faithful = grounded = total = true_claims = claims = 0
  for r in records:
    for t in _system(r):
      for i, text in t.get("explanations", {}).items():
        if i not in by_id:
          continue
        tc, c = claim_check(text, by_id[i], titles)
        total += 1
        faithful += tc == c
        grounded += c > 0
        true_claims, claims = true_claims + tc, claims + c
  if not total:
    return {}
  return {"explanations": total, "explanation_faithful": faithful / total,
          "explanation_grounded": grounded / total,
          "claim_precision": true_claims / claims if claims else float("nan")}


def turn_adheres(text: str, goal: goals_lib.Goal, titles: Iterable[str] = ()) -> bool:
  """Whether a user turn mentions only values consistent with the goal."""
  held = goal.held_values()
  for m in nlu.mentions(nlu.mask_titles(text, titles)):
    if (m.attr, m.value) in held and m.negated:
      return False
    if not m.negated and (m.attr, m.value) not in held:
      return False
  return True


def simulator_metrics(records: Sequence[dict], cat: catalogue_lib.Catalogue,
                      forced: Optional[dict] = None) -> dict:
  """`forced`: session id -> the intents asked of its user turns (for intent accuracy)."""
  by_id, titles = cat.by_id, [it.title for it in cat.items]
  turns = adhere = leaks = agree = reacts = hit = asked = readable = 0
  for r in records:
    goal = goals_lib.Goal.from_json(r["goal"])
    target = by_id[r["target"]].title.lower()
    acceptable = set(r["acceptable"])
    shown_titles: set = set()
    want = (forced or {}).get(r["session_id"]) or ()
    k, after = 0, False
    for t in r["turns"]:
      if t["role"] == "system":
        shown_titles |= {by_id[i].title.lower() for i in t.get("items", ()) if i in by_id}
        after = t.get("kind") in ("recommend", "reply")
        continue
      turns += 1
      readable += nlu.user_intent(nlu.mask_titles(t["text"], titles), after) == t["intent"]
      adhere += turn_adheres(t["text"], goal, titles)
      leaks += target in t["text"].lower() and target not in shown_titles
      for i, reaction in t.get("reactions", {}).items():
        if reaction in ("accept", "reject"):
          reacts += 1
          agree += (reaction == "accept") == (i in acceptable)
      if k < len(want):
        asked += 1
        hit += t["intent"] == want[k]
      k += 1
  out = {"user_turns": turns, "goal_adherence": adhere / max(turns, 1),
         "intent_text_agreement": readable / max(turns, 1),
         "target_leak_rate": leaks / max(len(records), 1),
         "acceptance_agreement": agree / reacts if reacts else float("nan")}
  if asked:
    out["intent_accuracy"] = hit / asked
  return out


def popularity_bias(records: Sequence[dict], cat: catalogue_lib.Catalogue,
                    head_share: float = 0.2) -> dict:
  """Gini of recommendation counts over the catalogue and the long-tail share (items outside
  the `head_share` most popular)."""
  index = {it.id: j for j, it in enumerate(cat.items)}
  counts = np.zeros(len(cat.items))
  for r in records:
    for t in _system(r):
      for i in t.get("items", ()):
        if i in index:
          counts[index[i]] += 1
  head = {it.id for it in catalogue_lib.popularity_order(cat.items)[
      :max(1, int(round(head_share * len(cat.items))))]}
  total = counts.sum()
  tail = sum(c for it, c in zip(cat.items, counts) if it.id not in head)
  return {"gini": stats.gini(counts) if counts.sum() else 0.0, "long_tail_share": float(tail / total) if total else 0.0}


def all_metrics(records: Sequence[dict], cat: catalogue_lib.Catalogue,
                forced: Optional[dict] = None) -> dict:
  """Every session metric of a set of records (`forced`: session -> forced intents)."""
  return {**success_metrics(records), **ranking_metrics(records), **faithfulness(records, cat),
          **popularity_bias(records, cat), **simulator_metrics(records, cat, forced)}
