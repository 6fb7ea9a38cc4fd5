"""Exact session metrics, computed from session records and the catalogue (hidden goals are
known, so nothing here is estimated by a model).

- success@T: share of sessions whose user accepted an item within T system turns; mean turns
  to success over the successful ones; `success_acceptable`: the accepted item is one the
  hidden goal accepts (differs from success only for a learned simulator, which can accept
  anything).
- recall@k / NDCG@k of a ranked list against the acceptable set R (binary relevance):
  recall@k = |top_k ∩ R| / min(|R|, k) (capped, so 1.0 is reachable when R has ties beyond
  k), NDCG@k = DCG@k / IDCG@k with gain 1 for items in R and log2(rank + 1) discounts.
  `ranking_*`: per recommendation turn, on that turn's full ranking (its slate, then the rest
  of the candidates it was chosen from, in order) against the acceptable items not shown
  before; `ranking_hit@k`: at least one of them in its top k; `target_hit@k`: the session's
  target in that ranking's top k; all averaged over recommendation turns. (The list of items shown in a session stops at acceptance, so rank
  metrics on it cap a perfect recommender far below 1: the oracle scored 0.40 there.)
  `retrieval_*`: the candidates the last retrieval returned.
- explanation faithfulness: an explanation's claims are the attribute values it names (titles
  masked; `crs_jax.nlu`); a claim is true when the item has that value (negated: does not).
  grounded = at least one claim; faithful = grounded and every claim true (an explanation that
  names nothing is not faithful: "You will love it" claims nothing checkable);
  `explanation_claims_true` = no false claim (the old, ungrounded reading);
  `explanation_user_grounded` = names a value the user asked for earlier that the item has;
  `recommendation_titled` = share of recommended items the recommendation's text names by
  title (a written recommendation can name a film other than the one shown).
- simulator controllability: intent accuracy against the forced intents with its chance level
  (the agreement a simulator that ignores the control would reach with the same intent
  frequencies: sum over intents of P(forced = c) P(produced = c)) and Cohen's kappa (accuracy
  above chance as a share of what is left above it), intent-text agreement
  (the utterance reads as the intent it claims, `nlu.user_intent`), goal adherence (a
  user turn names only values the user holds, and negates only ones it does not), target leaks
  (share of sessions in which a user turn names the title of the target or of another
  acceptable item, as a whole phrase, before the system showed it: MovieLens users hold a set
  of targets), and acceptance agreement
  (accept/reject reactions vs the hidden acceptable set).
- popularity bias of recommendations: Gini coefficient of per-item recommendation counts over
  the catalogue, and the long-tail share (recommended items outside the most popular 20%).
"""

from __future__ import annotations

import collections
import functools
import math
import re
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
  """success@T (accepted within T system turns), mean turns to success, and
  `success_acceptable`: the user accepted an item its hidden goal accepts (the target or an
  acceptable item). A rule user accepts only those, so the two agree; a learned simulator can
  accept anything, and then success says how readily it accepts, this whether it was right."""
  n = max(len(records), 1)
  st = [r.get("success_turn") for r in records]
  out = {f"success@{t}": sum(1 for x in st if x is not None and x <= t) / n for t in turns}
  ok = [x for x in st if x is not None]
  out["success"] = len(ok) / n
  out["success_acceptable"] = sum(
      1 for r in records if r.get("accepted") is not None
      and (r["accepted"] == r.get("target") or r["accepted"] in set(r.get("acceptable", ())))) / n
  out["mean_turns_to_success"] = float(np.mean(ok)) if ok else float("nan")
  return out


def ranking_metrics(records: Sequence[dict], ks=(1, 5, 10)) -> dict:
  """Per recommendation turn, NDCG / recall at `ks` of its full ranking against the acceptable
  items not shown before and target hit@k (averaged over turns); NDCG / recall of the last
  retrieval's candidates per session (module doc)."""
  out = {}
  turns = []                          # (ranking, relevant, target) per recommendation turn
  for r in records:
    before: set = set()
    for t in _system(r):
      items = list(t.get("items", ()))
      if items:
        ranking = items + [i for i in t.get("retrieved", ()) if i not in items]
        turns.append((ranking, set(r["acceptable"]) - before,
                      None if r["target"] in before else r["target"]))
        before |= set(items)
  if turns:
    out["recommendation_turns"] = len(turns)
    with_rel = [(l, rel) for l, rel, _ in turns if rel]
    for k in ks:
      out[f"ranking_recall@{k}"] = float(np.mean([recall_at_k(l, rel, k) for l, rel in with_rel])) \
          if with_rel else float("nan")
      out[f"ranking_ndcg@{k}"] = float(np.mean([ndcg_at_k(l, rel, k) for l, rel in with_rel])) \
          if with_rel else float("nan")
      out[f"ranking_hit@{k}"] = float(np.mean([bool(set(l[:k]) & rel) for l, rel in with_rel])) \
          if with_rel else float("nan")
      hits = [tg in l[:k] for l, _, tg in turns if tg is not None]
      out[f"target_hit@{k}"] = float(np.mean(hits)) if hits else float("nan")
  pairs = [(l, r["acceptable"]) for l, r in zip([_last_retrieved(r) for r in records], records)
           if l]
  for k in ks if pairs else ():
    out[f"retrieval_recall@{k}"] = float(np.mean([recall_at_k(l, rel, k) for l, rel in pairs]))
    out[f"retrieval_ndcg@{k}"] = float(np.mean([ndcg_at_k(l, rel, k) for l, rel in pairs]))
  return out


def _last_retrieved(rec) -> list:
  lists = [t["retrieved"] for t in _system(rec) if t.get("retrieved")]
  return list(lists[-1]) if lists else []


def claim_check(text: str, it: catalogue_lib.Item, titles: Iterable[str],
                schema: Optional[catalogue_lib.Schema] = None) -> tuple[int, int]:
  """(true claims, claims) of an explanation of item `it`."""
  ms = nlu.mentions(nlu.mask_titles(text, titles), schema)
  true = sum(1 for m in ms if it.has(m.attr, m.value) != m.negated)
  return true, len(ms)


def faithfulness(records: Sequence[dict], cat: catalogue_lib.Catalogue) -> dict:
  """Shares of explanations that name at least one attribute of the recommended item and make
  only true claims about it (faithful), that name one (grounded), with no false claim; that
  name a value of the item the user had asked for (`explanation_user_grounded`); and the share
  of recommended items whose title the recommendation's text names (`recommendation_titled`:
  a written recommendation can name another film than the one shown)."""
  by_id, titles = cat.by_id, [it.title for it in cat.items]
  faithful = all_true = grounded = total = true_claims = claims = user_grounded = 0
  titled = recommended = 0
  for r in records:
    asked: set = set()
    for t in r["turns"]:
      if t["role"] == "user":
        asked |= nlu.positive_values(nlu.mask_titles(t["text"], titles), cat.schema)
        continue
      if t.get("kind") == "recommend":
        for i in t.get("items", ()):
          if i in by_id:
            recommended += 1
            titled += _names(t["text"], by_id[i].title)
      for i, text in t.get("explanations", {}).items():
        if i not in by_id:
          continue
        tc, c = claim_check(text, by_id[i], titles, cat.schema)
        total += 1
        all_true += tc == c
        faithful += tc == c and c > 0
        grounded += c > 0
        true_claims, claims = true_claims + tc, claims + c
        named = nlu.positive_values(nlu.mask_titles(text, titles), cat.schema)
        user_grounded += any(by_id[i].has(a, v) for a, v in named & asked)
  out = {"recommendation_titled": titled / recommended} if recommended else {}
  if not total:
    return out
  return {**out, "explanations": total, "explanation_faithful": faithful / total,
          "explanation_grounded": grounded / total,
          "explanation_user_grounded": user_grounded / total,
          "explanation_claims_true": all_true / total,
          "claim_precision": true_claims / claims if claims else float("nan")}


def turn_adheres(text: str, goal: goals_lib.Goal, titles: Iterable[str] = (),
                 schema: Optional[catalogue_lib.Schema] = None) -> bool:
  """Whether a user turn mentions only values consistent with the goal."""
  held = goal.held_values()
  for m in nlu.mentions(nlu.mask_titles(text, titles), schema):
    if (m.attr, m.value) in held and m.negated:
      return False
    if not m.negated and (m.attr, m.value) not in held:
      return False
  return True


@functools.lru_cache(maxsize=8192)
def _title_pattern(title: str) -> re.Pattern:
  return re.compile(r"(?<!\w)" + re.escape(title) + r"(?!\w)")


def _names(text: str, title: str) -> bool:
  """`text` names `title` as whole words (one compiled pattern per title, cached: `re`'s own
  cache holds 512 and a real catalogue has thousands of titles)."""
  return _title_pattern(title).search(text) is not None


def simulator_metrics(records: Sequence[dict], cat: catalogue_lib.Catalogue,
                      forced: Optional[dict] = None) -> dict:
  """`forced`: session id -> the intents asked of its user turns (for intent accuracy)."""
  by_id, titles = cat.by_id, [it.title for it in cat.items]
  turns = adhere = leaks = agree = reacts = readable = 0
  pairs = []                                   # (forced intent, produced intent)
  for r in records:
    goal = goals_lib.Goal.from_json(r["goal"])
    acceptable = set(r["acceptable"])
    hidden = {by_id[i].title.lower() for i in acceptable | {r["target"]} if i in by_id}
    shown_titles: set = set()
    want = (forced or {}).get(r["session_id"]) or ()
    k, after, leaked = 0, False, False
    for t in r["turns"]:
      if t["role"] == "system":
        shown_titles |= {by_id[i].title.lower() for i in t.get("items", ()) if i in by_id}
        after = t.get("kind") in ("recommend", "reply")
        continue
      turns += 1
      readable += nlu.user_intent(nlu.mask_titles(t["text"], titles), after,
                                  cat.schema) == t["intent"]
      adhere += turn_adheres(t["text"], goal, titles, cat.schema)
      # shown titles masked first: "Scarlet Horizon" (unshown) inside "The Scarlet Horizon"
      # (shown) is no leak
      low = nlu.mask_titles(t["text"], shown_titles).lower()
      leaked = leaked or any(_names(low, x) for x in hidden - shown_titles)
      for i, reaction in t.get("reactions", {}).items():
        if reaction in ("accept", "reject"):
          reacts += 1
          agree += (reaction == "accept") == (i in acceptable)
      if k < len(want):
        pairs.append((want[k], t["intent"]))
      k += 1
    leaks += leaked
  out = {"user_turns": turns, "goal_adherence": adhere / max(turns, 1),
         "intent_text_agreement": readable / max(turns, 1),
         "target_leak_rate": leaks / max(len(records), 1),
         "acceptance_agreement": agree / reacts if reacts else float("nan")}
  if pairs:
    out.update(intent_control(pairs))
  return out


def intent_control(pairs: Sequence[tuple[str, str]]) -> dict:
  """Intent accuracy of (forced, produced) pairs, its chance level from the two marginals and
  Cohen's kappa (nan when chance is 1: one intent only)."""
  n = len(pairs)
  acc = sum(a == b for a, b in pairs) / n
  forced = collections.Counter(a for a, _ in pairs)
  produced = collections.Counter(b for _, b in pairs)
  chance = sum(forced[c] * produced[c] for c in forced) / (n * n)
  kappa = (acc - chance) / (1 - chance) if chance < 1 else float("nan")
  return {"intent_accuracy": acc, "intent_chance": chance, "intent_kappa": kappa,
          "forced_turns": n}


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
