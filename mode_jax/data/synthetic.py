"""The embedded default: procedurally generated instruction tasks in the SNI style.

Each task is a definition plus a generator `rng -> (input, output)`; the tasks need different
skills (string manipulation, arithmetic, counting, lookup, classification) and output formats
(strings, numbers, yes/no, labels), so one shared adapter suffers interference and a router has
something to learn. Examples are deterministic from (seed, task, index). A generated input
belongs to the eval split iff a stable hash of (task, input) falls in the eval bucket, so the
splits never share an input.
"""

from __future__ import annotations

import hashlib
import random
import string

from mode_jax.data import synthetic_words
# Shared with the word suite; re-exported here (tests and mode_jax.dataeval.sources use these names).
from mode_jax.data.synthetic_gen import (  # noqa: F401
    LETTERS, WORDS, SyntheticTask, every_second, kv_lookup, longest_word, majority,
    number_words, word)

Example = dict   # {"id", "input", "output"}


def _reverse(rng):
  w = word(rng, 3, 9)
  return w, w[::-1]


def _sort_digits(rng):
  d = "".join(rng.choice(string.digits) for _ in range(rng.randint(4, 9)))
  return d, "".join(sorted(d))


def _add(rng):
  a, b = rng.randint(10, 99999), rng.randint(10, 99999)
  return f"{a} + {b}", str(a + b)


def _count_char(rng):
  w = "".join(rng.choice("abcde") for _ in range(rng.randint(5, 14)))
  c = rng.choice("abcde")
  return f"{w} ; {c}", str(w.count(c))


def _caesar(rng):
  w, k = word(rng, 3, 8), rng.randint(1, 5)
  return f"{w} ; {k}", "".join(LETTERS[(LETTERS.index(ch) + k) % 26] for ch in w)


def _brackets(rng):
  n = rng.randint(2, 6)
  if rng.random() < 0.5:   # balanced by construction
    s, stack = [], []
    while len(s) < 2 * n:
      if stack and (rng.random() < 0.5 or len(s) + len(stack) >= 2 * n):
        s.append(")" if stack.pop() == "(" else "]")
      else:
        o = rng.choice("([")
        stack.append(o)
        s.append(o)
    text = "".join(s)
  else:
    text = "".join(rng.choice("()[]") for _ in range(2 * n))
  return text, "yes" if _balanced(text) else "no"


def _balanced(text: str) -> bool:
  stack = []
  for ch in text:
    if ch in "([":
      stack.append(ch)
    elif not stack or stack.pop() != {")": "(", "]": "["}[ch]:
      return False
  return not stack


def _number_words_task(rng):
  n = rng.randint(0, 99999) if rng.random() < 0.5 else rng.randint(0, 999)
  return number_words(n), str(n)


def _acronym(rng):
  words = [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
  return " ".join(words), "".join(w[0].upper() for w in words)


def _dedupe(rng):
  w = "".join(rng.choice("abcdefg") for _ in range(rng.randint(5, 12)))
  return w, "".join(dict.fromkeys(w))


def _multiply(rng):
  a, b = rng.randint(2, 999), rng.randint(2, 9)
  return f"{a} * {b}", str(a * b)


TASKS = (
    SyntheticTask("reverse_string", "Write the given word backwards, last letter first.",
                  _reverse),
    SyntheticTask("sort_digits", "Sort the digits of the given number in increasing order.",
                  _sort_digits),
    SyntheticTask("add_numbers", "Add the two numbers and give the sum.", _add),
    SyntheticTask("count_char", "Count how many times the letter after ';' occurs in the "
                  "string before it.", _count_char),
    SyntheticTask("caesar_shift", "Shift every letter of the word forward in the alphabet by "
                  "the number after ';' (wrapping from z to a).", _caesar),
    SyntheticTask("kv_lookup", "Given key=value pairs and a key after ';', output the value of "
                  "that key.", kv_lookup),
    SyntheticTask("bracket_match", "Answer yes if the brackets are balanced and correctly "
                  "nested, otherwise no.", _brackets),
    SyntheticTask("majority_label", "Output the label that occurs most often in the list.",
                  majority),
    SyntheticTask("every_second_word", "Copy every second word of the sentence (the 2nd, 4th, "
                  "...), separated by spaces.", every_second),
    SyntheticTask("number_words", "Convert the number written in English words to digits.",
                  _number_words_task),
    SyntheticTask("acronym", "Form an acronym from the first letter of each word, in capitals.",
                  _acronym),
    SyntheticTask("longest_word", "Output the longest word of the list.", longest_word),
    SyntheticTask("dedupe_letters", "Remove repeated letters, keeping the first occurrence of "
                  "each letter in order.", _dedupe),
    SyntheticTask("multiply", "Multiply the two numbers and give the product.", _multiply),
)
TASK_NAMES = tuple(t.name for t in TASKS)
_BY_NAME = {t.name: t for t in TASKS}


SUITES = ("bytes", "words")   # "words": `data.synthetic_words` (for pretrained subword models)
PREFIX = {"bytes": "syn_", "words": "words_"}   # seqio task name = PREFIX[suite] + task name


def bare_name(name: str, suite: str) -> str:
  """A task name without its suite's seqio prefix ("words_plurals" -> "plurals")."""
  return name[len(PREFIX[suite]):] if name.startswith(PREFIX[suite]) else name


def suite_tasks(suite: str = "bytes") -> tuple[SyntheticTask, ...]:
  """The tasks of a suite: "bytes" (this module: character-level, for the tiny byte model) or
  "words" (`data.synthetic_words`: word-level, for a pretrained subword model)."""
  if suite == "bytes":
    return TASKS
  if suite == "words":
    return synthetic_words.WORD_TASKS
  raise ValueError(f"unknown synthetic suite {suite!r}; known: {', '.join(SUITES)}")


def get_task(name: str, suite: str = "bytes") -> SyntheticTask:
  """The synthetic task `name` of `suite`; a KeyError lists the known names."""
  by_name = _BY_NAME if suite == "bytes" else {t.name: t for t in suite_tasks(suite)}
  if name not in by_name:
    raise KeyError(f"unknown synthetic task {name!r} in suite {suite!r}; known: "
                   f"{', '.join(by_name)}")
  return by_name[name]


def stable_bucket(*parts: str, buckets: int = 100) -> int:
  """Deterministic bucket of a string tuple (independent of PYTHONHASHSEED)."""
  h = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
  return int.from_bytes(h[:8], "little") % buckets


def in_eval_split(task: str, text: str, eval_percent: int = 10) -> bool:
  """Whether an example's text is held out (a stable hash bucket < `eval_percent`)."""
  return stable_bucket(task, text) < eval_percent


def examples(name: str, split: str, n: int, seed: int = 0,
             eval_percent: int = 10, suite: str = "bytes") -> list[Example]:
  """`n` examples of task `name` of `suite` for split "train" or "validation" (disjoint
  inputs)."""
  if split not in ("train", "validation"):
    raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
  task = get_task(name, suite)
  want_eval = split == "validation"
  out, seen, i = [], set(), 0
  rng = random.Random(f"{seed}/{name}")
  while len(out) < n:
    i += 1
    if i > 200 * n + 1000:
      raise RuntimeError(f"synthetic task {name}: cannot find {n} distinct {split} inputs")
    x, y = task.generate(rng)
    if in_eval_split(name, x, eval_percent) != want_eval:
      continue
    if want_eval and x in seen:   # eval inputs are distinct; train may repeat
      continue
    seen.add(x)
    out.append({"id": f"{name}-{split}-{len(out)}", "input": x, "output": y})
  return out
