"""The word-level synthetic suite (`data.synthetic_words`): every output recomputed from its
input by an independent checker, deterministic, disjoint splits, default sizes reachable; the
few-shot prompt of `make_synthetic_tasks` (Tk-Instruct "def + k pos", shots from train only)."""

import datetime
import re

import pytest

from mode_jax.data import synthetic, tasks
from mode_jax.data.vocab import make_vocab

from test_data_tasks import _parse_words

CATEGORY = {w: c for c, ws in {
    "fruit": "apple banana cherry grape lemon mango orange peach pear plum",
    "animal": "tiger horse rabbit eagle whale snake zebra camel wolf mouse",
    "colour": "red green blue yellow purple brown black white pink grey",
    "tool": "hammer saw drill wrench shovel axe chisel pliers rake ladder",
    "country": "france japan brazil kenya canada india mexico egypt spain chile"}.items()
    for w in ws.split()}
IRREGULAR = {"child": "children", "mouse": "mice", "foot": "feet", "tooth": "teeth",
             "man": "men", "woman": "women", "goose": "geese", "person": "people",
             "sheep": "sheep", "fish": "fish", "ox": "oxen", "cactus": "cacti"}


def _plural(w):
  if w in IRREGULAR:
    return IRREGULAR[w]
  if w.endswith("fe"):
    return w[:-2] + "ves"
  if w.endswith("f"):
    return w[:-1] + "ves"
  if w.endswith("y") and w[-2] not in "aeiou":
    return w[:-1] + "ies"
  if w.endswith(("s", "x", "ch", "sh")) or w in ("tomato", "potato", "hero"):
    return w + "es"
  return w + "s"


def _who(x):
  m = re.fullmatch(r"(\w+) has the (\w+)\. (\w+) has the (\w+)\. Who has the (\w+)\?", x)
  return m.group(1) if m.group(5) == m.group(2) else m.group(3)


CHECK = {
    "every_second_word": lambda x: " ".join(x.split()[1::2]),
    "reverse_words": lambda x: " ".join(x.split()[::-1]),
    "sort_words": lambda x: " ".join(sorted(x.split())),
    "longest_word": lambda x: max(x.split(), key=len),
    "majority_label": lambda x: max(set(x.split()), key=x.split().count),
    "kv_lookup": lambda x: dict(p.split("=") for p in x.split(" ; ")[0].split(", "))[
        x.split(" ; ")[1]],
    "number_words": lambda x: str(_parse_words(x)),
    "word_categories": lambda x: ", ".join(CATEGORY[w] for w in x.split(", ")),
    "plurals": lambda x: ", ".join(_plural(w) for w in x.split(", ")),
    "date_iso": lambda x: datetime.datetime.strptime(x, "%B %d, %Y").strftime("%Y-%m-%d"),
    "larger_number": lambda x: str(max(int(t) for t in x.split(" ; "))),
    "add_two_digit": lambda x: str(sum(int(t) for t in x.split(" + "))),
    "count_words": lambda x: str(len(x.split())),
    "who_has": _who,
}


def test_word_suite_is_correct_deterministic_and_split():
  names = [t.name for t in synthetic.suite_tasks("words")]
  assert set(names) == set(CHECK) and len(names) == 14
  for name in names:
    train = synthetic.examples(name, "train", 300, seed=3, suite="words")
    evals = synthetic.examples(name, "validation", 100, suite="words")
    for e in train + evals:
      assert CHECK[name](e["input"]) == e["output"], (name, e)
    ev3 = synthetic.examples(name, "validation", 40, seed=3, suite="words")
    assert not {e["input"] for e in train} & {e["input"] for e in ev3}, name
    assert len({e["input"] for e in evals}) == 100
    assert synthetic.examples(name, "train", 50, seed=3, suite="words") == train[:50]
  # the two suites keep their own generators under a shared name
  big = synthetic.examples("number_words", "train", 200, suite="bytes")
  small = synthetic.examples("number_words", "train", 200, suite="words")
  assert max(int(e["output"]) for e in small) < 10_000 < max(int(e["output"]) for e in big)
  with pytest.raises(ValueError, match="unknown synthetic suite 'chars'"):
    synthetic.suite_tasks("chars")
  with pytest.raises(KeyError, match="reverse_string.*suite 'words'"):
    synthetic.get_task("reverse_string", "words")


def test_word_suite_prompts_zero_and_few_shot():
  vocab = make_vocab("bytes")
  zero = tasks.make_synthetic_tasks(vocab, suite="words", num_train=5, num_eval=4,
                                    names=["date_iso"])
  few = tasks.make_synthetic_tasks(vocab, suite="words", num_train=5, num_eval=4,
                                   names=["date_iso"], num_shots=2)
  assert zero == ["words_date_iso"] and few == ["words2shot_date_iso"]
  z = tasks.task_examples(zero[0], "validation")
  f = tasks.task_examples(few[0], "validation")
  assert [r["references"] for r in z] == [r["references"] for r in f]   # same held-out rows
  assert z[0]["inputs"].startswith("Definition: Rewrite the date in the format YYYY-MM-DD.")
  assert "Positive Example" not in z[0]["inputs"]
  assert z[0]["inputs"].endswith("\nOutput: ")
  assert f[0]["inputs"].count("Positive Example") == 2
  assert f[0]["inputs"].endswith(z[0]["inputs"][z[0]["inputs"].index("Now complete"):])
  shots = re.findall(r"Input: (.+?)\.\n", f[0]["inputs"])[:2]
  heldout = {e["input"] for e in synthetic.examples("date_iso", "validation", 100,
                                                    suite="words")}
  assert len(shots) == 2 and not set(shots) & heldout   # shots come from the train split
  # identical shots for every held-out row of the task
  assert len({r["inputs"][:r["inputs"].index("Now complete")] for r in f}) == 1
