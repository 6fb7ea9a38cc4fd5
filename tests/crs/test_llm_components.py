"""The LLM recommender and simulator build exactly the prompts training saw: driven by a text
model that answers from the teacher's own (prompt -> target) labels they replay the teacher's
sessions turn for turn; malformed model output degrades to a defined action."""

import dataclasses

import numpy as np
import pytest

from crs_jax import catalogue, interfaces, llm, metrics, rule_simulator, session, text
from mode_jax.data import metrics as mode_metrics

CAT = catalogue.make_catalogue(200, seed=0)


def _teacher_records(n=40, seed=5):
  return session.run_sessions(text.TeacherRecommender(CAT), rule_simulator.RuleSimulator(CAT),
                              CAT, num_sessions=n, seed=seed)


def test_llm_components_replay_the_teacher_from_its_labels():
  recs = _teacher_records()
  ex = text.examples(session.sessions_from_records(recs, CAT), CAT, np.random.default_rng(0),
                     p_forced_intent=0.0)
  model = llm.MemorizedTextModel([pair for pairs in ex.values() for pair in pairs], "?")
  got = session.run_sessions(llm.LLMRecommender(model, CAT), llm.LLMSimulator(model), CAT,
                             num_sessions=40, seed=5)
  assert model.misses == 0
  assert got == recs
  m = metrics.all_metrics(got, CAT)
  assert m["success"] == 1.0 and m["explanation_faithful"] == 1.0


def test_written_profiles_come_from_the_profile_task_and_feed_the_prompts():
  """profile="written": the model's "profile" task writes each session's profile from its
  watch history, once; with a writer that reproduces the environment's profile the sessions
  equal the teacher's; the prompts carry whatever the writer wrote ("none": no profile)."""
  from crs_jax import goals
  recs = _teacher_records()
  sessions = session.sessions_from_records(recs, CAT)
  assert all(s.history for s in sessions)            # the watch history is logged
  ex = text.examples(sessions, CAT, np.random.default_rng(0), p_forced_intent=0.0)
  own = [(text.profile_prompt([CAT.by_id[i] for i in s.history]),
          goals.profile_text(s.history, CAT)) for s in sessions]
  model = llm.MemorizedTextModel([pair for pairs in ex.values() for pair in pairs] + own, "?")
  rec = llm.LLMRecommender(model, CAT, profile="written")
  got = session.run_sessions(rec, llm.LLMSimulator(model), CAT, num_sessions=40, seed=5)
  assert model.misses == 0 and got == recs
  assert rec.written == {s.session_id: s.profile for s in sessions}

  class Recording:
    def __init__(self):
      self.prompts = {}

    def complete(self, prompts, task):
      self.prompts.setdefault(task, []).extend(prompts)
      return ["Loves silent films." if task == "profile" else "ask genre"] * len(prompts)

  for mode, line in (("written", "P: Loves silent films."), ("none", None)):
    m = Recording()
    session.run_sessions(llm.LLMRecommender(m, CAT, profile=mode), llm.LLMSimulator(model),
                         CAT, num_sessions=3, seed=5, max_turns=2)
    assert len(m.prompts.get("profile", [])) == (3 if mode == "written" else 0)
    assert all((line in p) if line else ("\nP: " not in p and not p.startswith("P: "))
               for p in m.prompts["dm"])
  with pytest.raises(ValueError, match="LLMRecommender.profile"):
    llm.LLMRecommender(model, CAT, profile="guessed")


def test_teacher_labels_cover_every_task_and_fit_the_configured_lengths():
  ex = text.examples(session.sessions_from_records(_teacher_records(60), CAT), CAT,
                     np.random.default_rng(0))
  assert set(ex) == set(text.TASKS) and all(ex.values())
  # the dialogue manager's targets are the teacher's questions (several phrasings) or "search";
  # the ranker's, the whole recommendation with the title of the candidate it names
  kinds = [text.parse_dm(t, CAT.schema) for _, t in ex["dm"]]
  assert {k for k, _, _ in kinds} == {"ask", "search"}
  asks = [(a, u) for k, a, u in kinds if k == "ask"]
  assert all(a in CAT.schema.names and u.endswith("?") for a, u in asks)
  assert len({u for _, u in asks}) > len({a for a, _ in asks})        # not one per attribute
  for p, t in ex["rank"]:
    k, said = text.parse_pick(t, text.NUM_CANDIDATES)
    line = p.split("\nCandidates:\n")[1].split("\n")[k]
    assert said.startswith(f"How about {line.split('. ', 1)[1].split(':')[0]}?")
  intents = {t.split(":")[0] for _, t in ex["user"]}
  assert {"inform", "accept", "explain"} <= intents <= set(interfaces.INTENTS)
  assert any("Intent: any" in p for p, _ in ex["user"])
  assert any("Intent: any" not in p for p, _ in ex["user"])
  for pairs in ex.values():
    for p, t in pairs:
      assert len(p.encode()) <= 800 and len(t.encode()) <= 200, (p, t)


@pytest.mark.parametrize("out,expected", [
    ("Do you have a decade in mind?", ("ask", "era", "Do you have a decade in mind?")),
    (" Anything else you'd like? U: no", ("ask", None, "Anything else you'd like?")),
    ("ask genre", ("ask", "genre", "What genre would you like?")),     # the older label form
    ("ask colour", ("search", None, "")), ("I will look", ("search", None, "")),
    ("? ?", ("search", None, "")),
    ("", ("search", None, "")), ("search", ("search", None, "")),
    ("Search.", ("search", None, ""))])
def test_parse_dm_says_the_models_own_words(out, expected):
  assert text.parse_dm(out) == expected


def test_the_recommender_says_what_the_model_wrote_and_a_slate_gets_a_text_per_item():
  class Scripted:
    def __init__(self):
      self.calls = []

    def complete(self, prompts, task, prefixes=None):
      self.calls.append((task, prefixes))
      if task == "dm":
        return ["Any decade in mind?" if "U: hi" in p else "search" for p in prompts]
      if task == "rank" and prefixes is None:
        return ["2: How about Second? It has the comedy you asked for."] * len(prompts)
      if task == "rank":
        return [f" How about pick {x}?" for x in prefixes]
      return ["comedy"] * len(prompts)

  for slate in (1, 3):
    m = Scripted()
    rec = llm.LLMRecommender(m, CAT, slate=slate)
    a, b = session.new_session("s00000", 0, CAT), session.new_session("s00001", 0, CAT)
    a.turns.append(interfaces.UserTurn("hi", "chitchat"))
    b.turns.append(interfaces.UserTurn("A comedy please.", "inform"))
    ask, recd = rec.respond([a, b])
    assert (ask.kind, ask.text) == ("ask", "Any decade in mind?")
    assert recd.kind == "recommend" and len(recd.items) == slate
    assert recd.items[0] == recd.retrieved[1]               # the ranker's "2:"
    assert recd.text.startswith("How about Second? It has the comedy you asked for.")
    assert recd.explanations[recd.items[0]] == "It has the comedy you asked for."
    if slate == 3:             # the next candidates in retrieval order, each with its own text
      assert recd.items[1:] == (recd.retrieved[0], recd.retrieved[2])
      assert recd.text.endswith("How about pick 1:? How about pick 3:?")
      assert ("rank", ["1:", "3:"]) in m.calls
  with pytest.raises(ValueError, match="slate must be >= 1"):
    llm.LLMRecommender(m, CAT, slate=0)


def test_parse_pick_and_user_fall_back():
  assert text.parse_pick("3: a dark drama.", 5) == (2, "a dark drama.")
  assert text.parse_pick("9: x", 5)[0] == 0 and text.parse_pick("no idea", 5) == (0, "no idea")
  assert text.parse_user("refine: Not horror.") == ("refine", "Not horror.")
  assert text.parse_user("shout: hey") == ("inform", "shout: hey")


def test_simulator_reactions_follow_its_intent():
  s = session.new_session("s00000", 0, CAT)
  it = CAT.items[0].id
  s.turns.append(interfaces.SystemTurn("How about it?", "recommend", items=(it,)))
  for out, intent, reaction in [("accept: Great!", "accept", "accept"),
                                ("refine: Not that.", "refine", "reject"),
                                ("explain: Why?", "explain", "ask")]:
    t = llm.LLMSimulator._turn(s, out)
    assert (t.intent, t.reactions) == (intent, {it: reaction})
  s.turns[-1] = interfaces.SystemTurn("What genre would you like?", "ask")
  assert llm.LLMSimulator._turn(s, "accept: ok").intent == "inform"


def test_score_ranking_replays_the_teacher_from_its_labels():
  """ranking="score": the pick is the candidate whose "<k>:" scores best and the explanation
  is generated after it; with the teacher's labels the sessions are the teacher's."""
  recs = _teacher_records()
  ex = text.examples(session.sessions_from_records(recs, CAT), CAT, np.random.default_rng(0),
                     p_forced_intent=0.0)
  model = llm.MemorizedTextModel([pair for pairs in ex.values() for pair in pairs], "?")
  got = session.run_sessions(llm.LLMRecommender(model, CAT, ranking="score"),
                             llm.LLMSimulator(model), CAT, num_sessions=40, seed=5)
  assert model.misses == 0 and got == recs
  assert model.calls["rank score"] == model.calls["rank"] > 0


def test_fuse_is_reciprocal_rank_fusion():
  # a: 1/61 + 1/62, b: 1/62 + 1/61, c: 1/63, d: 1/61 -> a, b tie (first seen first)
  assert llm.fuse([["a", "b", "c"], ["d", "a", "b"]], k=10, rrf_k=60) == ["a", "b", "d", "c"]
  assert llm.fuse([["x", "y"]], k=1) == ["x"]
  assert llm.fuse([["a", "b"], ["b", "a"], ["b"]], k=10) == ["b", "a"]


class _Recording:
  """Answers every dm call with "search" and every query with a fixed query; keeps prompts."""

  def __init__(self, query="comedy"):
    self.query, self.prompts = query, {}

  def complete(self, prompts, task, prefixes=None):
    self.prompts.setdefault(task, []).extend(prompts)
    return [{"dm": "search", "query": self.query}.get(task, "2: fine.") for _ in prompts]


@pytest.fixture(scope="module")
def dense():
  from crs_jax import dual_encoder
  from mode_jax.dataeval import embed
  train = session.sessions_from_records(_teacher_records(80, seed=11), CAT)
  enc, _ = dual_encoder.train(embed.HashingEncoder(256), dual_encoder.training_pairs(train),
                              {it.id: dual_encoder.item_text(it) for it in CAT.items},
                              steps=20, dim=16)
  return dual_encoder.DenseIndex(enc, CAT.items)


def test_dense_and_hybrid_retrieval_feed_the_ranker(dense):
  from crs_jax import dual_encoder
  runs = {}
  for retriever in ("search", "dense", "hybrid"):
    m = _Recording()
    rec = llm.LLMRecommender(m, CAT, retriever=retriever, dense=dense)
    runs[retriever] = (m, session.run_sessions(rec, rule_simulator.RuleSimulator(CAT), CAT,
                                               num_sessions=4, seed=3, max_turns=3))
  assert "query" not in runs["dense"][0].prompts       # no query writer call
  assert len(runs["hybrid"][0].prompts["query"]) > 0
  search = llm.LLMRecommender(_Recording(), CAT).index
  for retriever, (m, recs) in runs.items():
    for r in recs:
      s = session.sessions_from_records([r], CAT)[0]
      for k, t in enumerate(s.turns):
        if not isinstance(t, interfaces.SystemTurn) or t.kind != "recommend":
          continue
        before = dataclasses.replace(s, turns=s.turns[:k])
        shown = before.shown()
        by_search = search.search("comedy", k=10, exclude=shown)
        by_dense = dense.search(dual_encoder.conversation_text(before.turns), k=10,
                                exclude=shown)
        want = {"search": by_search, "dense": by_dense,
                "hybrid": llm.fuse([by_search, by_dense], 10)}[retriever]
        assert list(t.retrieved) == want and not set(want) & set(shown)
        assert t.items == (want[1],) and t.query == ("" if retriever == "dense" else "comedy")
  with pytest.raises(ValueError, match="retriever='dense' needs a dense index"):
    llm.LLMRecommender(_Recording(), CAT, retriever="dense")
  with pytest.raises(ValueError, match="LLMRecommender.ranking"):
    llm.LLMRecommender(_Recording(), CAT, ranking="vote")


def test_dense_index_excludes_items(dense):
  top = dense.search("I want a comedy", k=5)
  assert len(top) == 5
  again = dense.search("I want a comedy", k=5, exclude=top[:2])
  assert again[:3] == top[2:] and not set(again) & set(top[:2])
  assert len(dense.search("x", k=len(CAT.items), exclude=[CAT.items[0].id])) == \
      len(CAT.items) - 1


def test_decision_metric_scores_the_choice_not_the_phrasing():
  """Exact match counts another phrasing of the same question as wrong; the decision column
  counts what was chosen (asked attribute, candidate number, intent)."""
  refs = [["Do you have a decade in mind?"], ["Which mood do you prefer?"], ["search"],
          ["Is there a genre you are after?"]]
  preds = ["Which decade do you prefer?",     # same decision, other words
           "Which genre do you prefer?",      # other attribute
           "search",
           "search"]                          # searched instead of asking
  got = text.decision_metric("dm")(refs, preds)
  assert got == {"decision": 50.0}
  assert mode_metrics.rouge_em_metrics(refs, preds)["exact_match"] == 25.0
  rank = text.decision_metric("rank")(
      [["2: How about X? It is a drama."], ["1: How about Y?"], ["3: How about Z?"]],
      ["2: How about W? It is long.", "How about Y?", "3"])
  assert rank == {"decision": 100.0 * 1 / 3}    # no number is no decision; "3" has no ":"
  user = text.decision_metric("user")(
      ["accept: Sounds good.", "reject: No.", "inform: A drama."],
      ["accept: Great, thanks.", "rejected: no", "inform: Something long."])
  assert user == {"decision": 100.0 * 2 / 3}
  with pytest.raises(ValueError, match="query"):
    text.decision_of("query", "drama 1990s")


def test_dm_rank_user_tasks_carry_the_decision_metric(tmp_path):
  """The registered RecLLM tasks score dm, rank and user decisions beside ROUGE-L / exact."""
  import seqio
  from configs import crs_synthetic
  from crs_jax import data as crs_data
  d = crs_synthetic.get_config().data
  d.unlock()
  d.crs.num_sessions, d.crs.num_eval_sessions = 6, 4
  d.inputs_len, d.targets_len = 4096, 1024
  names, _, _ = crs_data.tasks_kind(d, seqio.ByteVocabulary(), str(tmp_path))
  for t in text.TASKS:
    task = seqio.get_mixture_or_task(crs_data.task_name(t))
    outs = [fn([["search"]], ["search"]) for fn in task.metric_fns]
    assert any("decision" in o for o in outs) == (t in text.DECISION_TASKS), (t, outs)
