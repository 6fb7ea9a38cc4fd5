"""The agenda-based rule user simulator (Schatzmann et al. 2007): exact labels for bootstrap
data and a reference for the learned simulator.

The agenda is the goal's values in the order a user would volunteer them: hard constraints,
then likes by weight, then dislikes. Each turn realises one intent:

- opening / after a chit-chat reply: `inform` the next unrevealed agenda item;
- after a question about attribute a: `inform` the held value of a ("no preference" if none);
- after a recommendation: `accept` the first acceptable item (exact hidden utility); else, with
  probability `p_explain` and not yet asked about it, `explain` (ask why the item fits); else
  `refine` (say why it does not fit, revealing an agenda item) or `reject` when nothing is left
  to reveal;
- after an explanation: decide on the explained item as after a recommendation;
- with probability `p_chitchat`, `chitchat` instead of an inform.

A forced intent (`Session.forced_intents`, the turn-level control variable) is realised when
the situation admits it: reactions always follow the hidden utility (no "accept" without an
acceptable item on the table, no "reject"/"refine" of an acceptable one), "explain" needs a
recommended item not yet explained, and "inform" an attribute left to talk about. The user never
names the target before the system has shown it, mentions only values it holds (negated ones
only values it does not want), and its accept/reject reactions agree with the utility.
"""

from __future__ import annotations

from typing import Optional, Sequence

from crs_jax import catalogue as catalogue_lib
from crs_jax import interfaces
from crs_jax import nlu

Session = interfaces.Session
UserTurn = interfaces.UserTurn

INFORM = ("I'm looking for a {v} film.", "Something {v}, please.",
          "I'd like to watch a {v} movie.", "Can you find me something {v}?")
ANSWER = ("Please, {v}.", "I'd like {v}.", "I'd go for {v}.", "Let's go with {v}.")
NO_PREF = ("I don't mind about the {w}.", "Any {w} is fine.", "No preference on the {w}.")
DISLIKE = ("Nothing {v}, please.", "I'd rather avoid anything {v}.")
EXPLAIN = ("Why would I like {t}?", "What makes {t} a good pick for me?",
           "Tell me more about {t}.")
ACCEPT = ("{t} sounds great, I'll watch it!", "Perfect, {t} it is.", "Yes, {t} is what I wanted.")
REJECT = ("Not that one. Anything else?", "Hmm, I don't think so. Something else?",
          "That doesn't appeal to me. What else do you have?")
REFINE_WRONG = ("Not {bad}, I want {v}.", "I don't want {bad}. {v} please.")
REFINE_MORE = ("Close, but I'd prefer something {v}.", "Maybe, but ideally {v}.")
CHITCHAT = ("By the way, I watched a great film last weekend.",
            "Thanks for helping me out tonight.", "I have the whole evening free.")


class RuleSimulator:
  def __init__(self, catalogue: catalogue_lib.Catalogue, *, p_explain: float = 0.2,
               p_chitchat: float = 0.05):
    self.catalogue, self.by_id, self.schema = catalogue, catalogue.by_id, catalogue.schema
    self.p_explain, self.p_chitchat = p_explain, p_chitchat

  def respond(self, sessions: Sequence[Session]) -> list[UserTurn]:
    """The next user turn of each session."""
    return [self.turn(s) for s in sessions]

  # ----------------------------------------------------------------------- state
  @staticmethod
  def agenda(s: Session) -> list[tuple]:
    """The user's agenda: constraints, then likes, then dislikes to reveal."""
    g = s.goal
    out = [("like", a, v) for a, v in g.constraints.items()]
    likes = sorted(((w, a, v) for a, d in g.likes.items() for v, w in d.items()),
                   key=lambda x: -x[0])
    out += [("like", a, v) for _, a, v in likes]
    out += [("dislike", a, v) for a, d in g.dislikes.items() for v in d]
    return out

  def unrevealed(self, s: Session) -> list[tuple]:
    """Agenda entries not said yet."""
    said = set()
    for t in s.user_turns():
      said |= nlu.positive_values(t.text, self.schema) | nlu.negative_values(t.text, self.schema)
    return [x for x in self.agenda(s) if (x[1], x[2]) not in said]

  def _say(self, s: Session, options: Sequence[str], **kw) -> str:
    return options[int(s.rng("user-text").integers(len(options)))].format(**kw)

  def _inform(self, s: Session, item: Optional[tuple]) -> UserTurn:
    if item is None:
      return UserTurn(self._say(s, CHITCHAT), "chitchat")
    kind, a, v = item
    return UserTurn(self._say(s, INFORM if kind == "like" else DISLIKE, v=v), "inform")

  # ----------------------------------------------------------------------- turns
  def turn(self, s: Session) -> UserTurn:
    """The next user turn: react to a recommendation, answer a question or reveal a preference."""
    rng = s.rng("user")
    forced = s.next_intent()
    last = s.turns[-1] if s.turns else None
    todo = self.unrevealed(s)
    chat = forced == "chitchat" or (forced is None and rng.random() < self.p_chitchat)
    if last is None or (isinstance(last, interfaces.SystemTurn) and last.kind in ("reply",
                                                                                   "request")
                        and not self._pending(s)):
      if chat:
        return UserTurn(self._say(s, CHITCHAT), "chitchat")
      return self._inform(s, todo[0] if todo else None)
    if last.kind == "ask":
      a = nlu.asked_attribute(last.text, self.schema)
      if chat:
        return UserTurn(self._say(s, CHITCHAT), "chitchat")
      if a is None:
        return self._inform(s, todo[0] if todo else None)
      if a in s.goal.constraints:
        return UserTurn(self._say(s, ANSWER, v=s.goal.constraints[a]), "inform")
      if a in s.goal.likes:
        v = max(s.goal.likes[a].items(), key=lambda kv: kv[1])[0]
        return UserTurn(self._say(s, ANSWER, v=v), "inform")
      if a in s.goal.dislikes:
        return UserTurn(self._say(s, DISLIKE, v=next(iter(s.goal.dislikes[a]))), "inform")
      return UserTurn(self._say(s, NO_PREF, w=self.schema.question_words(a)[0]), "inform")
    items = list(last.items) if last.kind == "recommend" else self._pending(s)
    return self._react(s, items, forced, rng, todo, explained=last.kind != "recommend")

  def _pending(self, s: Session) -> list:
    """Items the user asked to have explained in its last turn."""
    users = s.user_turns()
    if not users or users[-1].intent != "explain":
      return []
    return [i for i, r in users[-1].reactions.items() if r == "ask"]

  def _react(self, s, items, forced, rng, todo, explained: bool) -> UserTurn:
    ok = [i for i in items if s.judgement.accepts(i)]
    reactions = {i: "reject" for i in items}
    asked = {i for t in s.user_turns() for i, r in t.reactions.items() if r == "ask"}
    fresh = [i for i in items if i not in asked]
    want_explain = forced == "explain" or (forced is None and not explained
                                           and rng.random() < self.p_explain)
    if ok and not (fresh and want_explain):    # reactions always follow the utility
      reactions[ok[0]] = "accept"
      return UserTurn(self._say(s, ACCEPT, t=self.by_id[ok[0]].title), "accept", reactions)
    if fresh and want_explain:
      i = fresh[0]
      return UserTurn(self._say(s, EXPLAIN, t=self.by_id[i].title), "explain", {i: "ask"})
    if not items:
      return self._inform(s, todo[0] if todo else None)
    it = self.by_id[items[0]]
    if forced != "reject":
      held = s.goal.held_values()
      for a, v in s.goal.constraints.items():        # a broken constraint: say so
        bad = [x for x in it.values(a) if (a, x) not in held]
        if not it.has(a, v) and bad:
          return UserTurn(self._say(s, REFINE_WRONG, bad=bad[0], v=v), "refine", reactions)
      for a, d in s.goal.dislikes.items():
        bad = [x for x in it.values(a) if x in d]
        if bad:
          return UserTurn(self._say(s, DISLIKE, v=bad[0]), "refine", reactions)
      likes = [x for x in todo if x[0] == "like"]
      if likes:
        return UserTurn(self._say(s, REFINE_MORE, v=likes[0][2]), "refine", reactions)
    return UserTurn(self._say(s, REJECT), "reject", reactions)
