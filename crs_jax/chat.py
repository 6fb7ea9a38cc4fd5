"""A small chat page where a person talks to the recommender (FastAPI, as the project's
OpenAI-compatible server): their turns, the system's replies, the retrieved and recommended
items with their explanations, and a button that lets the user simulator play the next user turn.

    python -m crs_jax.chat [--workdir=runs/crs] [--port=8000]    # then open http://127.0.0.1:8000

With `--workdir` of a finished `crs_jax.main` run the LLM recommender and simulator are served
(the run's adapters); by default (`--workdir=auto`) the first finished run of `DEFAULT_RUNS`
(the Gemma 3 270M runs before the tiny model's `make crs` run; `--workdir=` for none); with `--served_url=http://host:port [--served_model=NAME --served_chat]`
every component is the LLM on that OpenAI-compatible server, few-shot prompted
(`crs_jax.few_shot`); otherwise the rule recommender and the rule simulator (no model needed).
`--catalogue=movielens` puts MovieLens-100k's 1,682 movies (genre, decade) behind the rule or
served system.
A person's intent is read from their text (`nlu.user_intent`), so acceptances and rejections
count as in simulated sessions. The page keeps no state; sessions live in the server's memory.
No `from __future__ import annotations`: FastAPI resolves the request models from annotations.
"""

import os
import threading
from typing import Optional

import fastapi
import fastapi.responses
import ml_collections
import pydantic
import uvicorn
from absl import flags

from crs_jax import baselines, data, few_shot, llm, movielens, rule_simulator, serving
from crs_jax import catalogue as catalogue_lib
from crs_jax import interfaces, nlu
from crs_jax import text as text_lib
from crs_jax import session as session_lib
from mode_jax import cli

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>RecLLM chat</title>
<style>
body { font-family: sans-serif; max-width: 820px; margin: 1em auto; }
#log { border: 1px solid #ccc; padding: .5em; height: 420px; overflow-y: auto; }
.turn { margin: .3em 0; padding: .3em .5em; border-radius: 6px; }
.user { background: #e8f0fe; text-align: right; }
.system { background: #f1f3f4; }
.item-card { border: 1px solid #888; margin: .3em 0; padding: .3em; background: #fff; }
.retrieved { color: #555; font-size: 85%; }
#profile { color: #555; font-size: 90%; }
</style></head>
<body>
<h2>RecLLM: conversational recommendations</h2>
<div id="profile"></div>
<div id="log"></div>
<p><input id="msg" size="60" placeholder="Tell me what you'd like to watch">
<button id="send">Send</button> <button id="simulate">Let the simulator answer</button>
<button id="new">New session</button></p>
<script>
let sid = null;
function esc(s) { const d = document.createElement('div'); d.textContent = s; return d.innerHTML; }
function add(role, html) {
  const d = document.createElement('div'); d.className = 'turn ' + role; d.innerHTML = html;
  const log = document.getElementById('log'); log.appendChild(d); log.scrollTop = log.scrollHeight;
}
function show(r) {
  add('user', esc(r.user.text) + ' <small>(' + r.user.intent + ')</small>');
  if (r.done) { add('system', '<b>Session finished.</b>'); return; }
  let html = esc(r.system.text);
  for (const it of r.system.items) {
    html += '<div class="item-card"><b>' + esc(it.title) + '</b> (' + esc(it.meta) + ')<br>' +
            esc(it.explanation) + '</div>';
  }
  if (r.system.retrieved.length) {
    html += '<div class="retrieved">retrieved: ' + r.system.retrieved.map(esc).join('; ') + '</div>';
  }
  add('system', html);
}
async function post(url, body) {
  const res = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                body: JSON.stringify(body)});
  return res.json();
}
async function newSession() {
  const r = await post('/api/session', {});
  sid = r.session_id; document.getElementById('log').innerHTML = '';
  document.getElementById('profile').textContent = 'Profile: ' + r.profile;
}
document.getElementById('new').onclick = newSession;
document.getElementById('send').onclick = async () => {
  const m = document.getElementById('msg'); if (!m.value) return;
  const r = await post('/api/turn', {session_id: sid, text: m.value}); m.value = ''; show(r);
};
document.getElementById('simulate').onclick = async () => {
  show(await post('/api/simulate', {session_id: sid}));
};
newSession();
</script></body></html>
"""


def meta(it: catalogue_lib.Item) -> str:
  """One line of an item's attributes."""
  return text_lib.item_line(it)


def make_app(recommender, simulator, cat: catalogue_lib.Catalogue, *, seed: int = 0,
             max_turns: int = 12):
  """The chat page's FastAPI app: a user talks to `recommender` (or watches `simulator`)."""

  class NewSession(pydantic.BaseModel):
    seed: Optional[int] = None

  class Turn(pydantic.BaseModel):
    session_id: str
    text: str = ""

  app = fastapi.FastAPI(title="crs_jax chat")
  sessions: dict = {}
  lock = threading.Lock()
  by_id = cat.by_id

  def get(sid):
    if sid not in sessions:
      raise fastapi.HTTPException(404, f"unknown session_id {sid!r}")
    return sessions[sid]

  def advance(s, user: interfaces.UserTurn) -> dict:
    s.turns.append(user)
    out = {"user": {"text": user.text, "intent": user.intent}}
    if s.accepted() is not None or len(s.system_turns()) >= max_turns:
      return dict(out, done=True)
    sys_turn = recommender.respond([s])[0]
    s.turns.append(sys_turn)
    items = [{"id": i, "title": by_id[i].title, "meta": meta(by_id[i]),
              "explanation": sys_turn.explanations.get(i, "")} for i in sys_turn.items]
    retrieved = [by_id[i].title for i in sys_turn.retrieved[:5] if i in by_id]
    return dict(out, done=False, system={"text": sys_turn.text, "kind": sys_turn.kind,
                                         "items": items, "retrieved": retrieved})

  @app.get("/", response_class=fastapi.responses.HTMLResponse)
  def page():
    return PAGE

  @app.post("/api/session")
  def new_session(req: NewSession):
    with lock:
      sid = session_lib.session_id(len(sessions))
      s = session_lib.new_session(sid, seed if req.seed is None else req.seed, cat)
      sessions[sid] = s
    return {"session_id": sid, "profile": s.profile}

  @app.post("/api/turn")
  def turn(req: Turn):
    with lock:
      s = get(req.session_id)
      last = s.system_turns()[-1] if s.system_turns() else None
      after = last is not None and last.kind in ("recommend", "reply")
      intent = nlu.user_intent(nlu.mask_titles(req.text, [by_id[i].title for i in s.shown()]),
                               after, cat.schema)
      reactions = {}
      if after and intent in ("accept", "reject", "refine", "explain"):
        items = list(last.items) or list(last.explanations)
        verdict = {"accept": "accept", "explain": "ask"}.get(intent, "reject")
        reactions = {i: "reject" for i in items}
        if items:
          reactions[items[0]] = verdict
      return advance(s, interfaces.UserTurn(req.text, intent, reactions))

  @app.post("/api/simulate")
  def simulate(req: Turn):
    with lock:
      s = get(req.session_id)
      return advance(s, simulator.respond([s])[0])

  return app


DEFAULT_RUNS = ("runs/crs_gemma3", "runs/crs_gemma3_cpu", "runs/crs")


def default_workdir(root: str = ".") -> str:
  """The first of `DEFAULT_RUNS` under `root` that holds a finished run (its serving spec), or
  "" when none does."""
  for d in DEFAULT_RUNS:
    if os.path.exists(os.path.join(root, d, serving.FILE)):
      return os.path.join(root, d)
  return ""


def load_components(workdir: str, cat_size: int, cat_seed: int, *, served_url: str = "",
                    served_model: str = "", chat: bool = False, catalogue: str = "synthetic"):
  """(recommender, simulator, catalogue): the LLM ones of a finished crs_jax.main run (its
  serving spec, vocabulary, base and adapters) with `workdir`; the few-shot LLM ones on the
  OpenAI-compatible server at `served_url` (`crs_jax.few_shot`); else the rule ones, on the
  synthetic catalogue or on MovieLens-100k (`catalogue="movielens"`)."""
  if workdir:
    return serving.load_llm_components(workdir)
  if catalogue == "movielens":
    ml = movielens.load()
    cat = movielens.catalogue(ml, movielens.holdout(ml.ratings))
  elif catalogue == "synthetic":
    cat = data.make_catalogue(cat_size, cat_seed)
  else:
    raise ValueError(f"--catalogue: {catalogue!r} is not synthetic or movielens")
  if served_url:
    model = few_shot.served_model(ml_collections.ConfigDict(dict(
        url=served_url, model=served_model, chat=chat)), cat)
    return llm.LLMRecommender(model, cat), llm.LLMSimulator(model), cat
  return baselines.RuleRecommender(cat), rule_simulator.RuleSimulator(cat), cat


def main(argv=None):
  """Serves the chat page for a finished workdir (the LLM recommender) or the rule baseline."""

  ap = flags.FlagValues()
  flags.DEFINE_string("workdir", "auto", "a finished crs_jax.main workdir (LLM); auto: the "
                      "first finished run of DEFAULT_RUNS; empty: none", flag_values=ap)
  flags.DEFINE_string("served_url", "", "an OpenAI-compatible server: few-shot LLM components",
                      flag_values=ap)
  flags.DEFINE_string("served_model", "gemma3_270m", "the served model's name", flag_values=ap)
  flags.DEFINE_bool("served_chat", False, "use /v1/chat/completions", flag_values=ap)
  flags.DEFINE_string("catalogue", "synthetic", "synthetic | movielens (rule or served system)",
                      flag_values=ap)
  flags.DEFINE_integer("catalogue_size", 500, "", flag_values=ap)
  flags.DEFINE_integer("catalogue_seed", 0, "", flag_values=ap)
  flags.DEFINE_string("host", "127.0.0.1", "", flag_values=ap)
  flags.DEFINE_integer("port", 8000, "", flag_values=ap)
  args = cli.parse_argv(ap, argv)
  workdir = args.workdir
  if workdir == "auto":
    workdir = "" if args.served_url else default_workdir()
  print(f"chat: serving {workdir or args.served_url or 'the rule recommender and simulator'}",
        flush=True)
  rec, sim, cat = load_components(workdir, args.catalogue_size, args.catalogue_seed,
                                  served_url=args.served_url, served_model=args.served_model,
                                  chat=args.served_chat, catalogue=args.catalogue)
  uvicorn.run(make_app(rec, sim, cat), host=args.host, port=args.port)


if __name__ == "__main__":
  main()
