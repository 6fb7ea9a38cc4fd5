"""Few-shot RecLLM components over any text model: every prompt carries its task's
instruction and worked examples (each kind of answer shown), the examples come from teacher
sessions of another seed than the evaluated ones, and sessions run through the same runner."""

import json

import numpy as np

from crs_jax import catalogue, few_shot, llm, metrics, session


class Recorder:
  """A RecLLM TextModel that answers fixed lines and records the prompts."""

  def __init__(self):
    self.prompts, self.calls = [], {}

  def complete(self, prompts, task, prefixes=None):
    self.prompts += [(task, p) for p in prompts]
    self.calls[task] = self.calls.get(task, 0) + 1
    answer = {"dm": "search", "query": "comedy", "rank": "2: a comedy",
              "profile": "Likes comedy.", "user": "inform: Something comedy, please."}[task]
    return [answer] * len(prompts)

  def score(self, prompts, task, continuations):
    return [np.zeros(len(c)) for c in continuations]


def test_select_shows_every_kind_of_answer_shortest_first():
  pairs = [("long prompt " * 5, "search"), ("p1", "What genre?"), ("p22", "Which decade?"),
           ("p3", "search"), ("p4444", "Any mood?")]
  assert few_shot.select(pairs, 3) == [("p1", "What genre?"), ("p3", "search"),
                                       ("p22", "Which decade?")]
  assert few_shot.select([("a", "inform: x"), ("b", "accept: y"), ("c", "inform: z")], 2) == [
      ("b", "accept: y"), ("a", "inform: x")]
  assert len(few_shot.select(pairs, 10)) == 5


def test_every_prompt_carries_its_tasks_header_and_sessions_run():
  cat = catalogue.make_catalogue(80, seed=0)
  shots = few_shot.shots_for(cat, seed=5, num_sessions=8)
  assert {t: len(v) for t, v in shots.items()} == few_shot.SHOTS
  assert {few_shot.kind_of(t) for _, t in shots["dm"]} == {"question", "search"}
  assert len({t.split(":")[0] for _, t in shots["user"]}) >= 3
  inner = Recorder()
  model = few_shot.FewShotTextModel(inner, shots, cat.schema)
  recs = session.run_sessions(llm.LLMRecommender(model, cat), llm.LLMSimulator(model), cat,
                              num_sessions=3, seed=2005, max_turns=3)
  assert len(recs) == 3 and metrics.success_metrics(recs)["success@8"] >= 0
  for task, p in inner.prompts:
    head = few_shot.header(task, shots[task], cat.schema)
    assert p.startswith(head) and head.startswith(few_shot.INSTRUCTIONS[task][:20])
    assert p[len(head):].endswith(("Action:", "Query:", "Pick:", "Profile:", "U:"))
  assert {t for t, _ in inner.prompts} >= {"dm", "query", "rank", "user"}
  # the shots' sessions are not the evaluated ones (another seed: other goals)
  key = lambda g: json.dumps(g, sort_keys=True)
  shot_goals = {key(session.new_session(session.session_id(k), 5, cat).goal.to_json())
                for k in range(8)}
  assert len(shot_goals) == 8 and not shot_goals & {key(r["goal"]) for r in recs}


def test_the_served_model_waits_as_long_as_a_slow_server_needs():
  """A request that times out is sent again while the server still computes it: on a 2-core
  CPU a joined batch of few-shot prompts takes minutes, so the default is long and settable."""
  import ml_collections
  cat = catalogue.make_catalogue(40, seed=0)
  scfg = ml_collections.ConfigDict(dict(url="http://127.0.0.1:9", model="m", shot_sessions=2))
  assert few_shot.served_model(scfg, cat).inner.model.timeout == few_shot.TIMEOUT >= 600
  scfg.timeout = 1200.0
  client = few_shot.served_model(scfg, cat).inner.model
  assert client.timeout == 1200.0 and client.retry_window >= 1200.0
