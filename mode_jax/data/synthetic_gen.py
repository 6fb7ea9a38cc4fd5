"""Pieces both synthetic suites use: the task record, word lists and the generators the byte
suite (`data.synthetic`) and the word suite (`data.synthetic_words`) share."""

from __future__ import annotations

import dataclasses
import random
import string
from typing import Callable

LETTERS = string.ascii_lowercase
WORDS = ("apple river stone cloud tiger paper glass music orange silver garden window "
          "candle forest rocket pepper violin marble castle bridge dragon planet spring "
          "mirror shadow winter lemon canvas button jacket ladder").split()
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen " \
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def word(rng, lo=3, hi=8):
  """A random lower-case letter string of lo..hi letters."""
  return "".join(rng.choice(LETTERS) for _ in range(rng.randint(lo, hi)))


def number_words(n: int) -> str:
  """`n` in English words ("forty-two")."""
  if n >= 1000:
    rest = n % 1000
    return number_words(n // 1000) + " thousand" + ("" if rest == 0 else " " + number_words(rest))
  if n < 20:
    return _ONES[n]
  if n < 100:
    return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
  rest = n % 100
  return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))


def kv_lookup(rng):
  """(input, answer): "a=1, b=2 ; b" -> "2"."""
  keys = rng.sample(LETTERS, rng.randint(3, 6))
  vals = [str(rng.randint(0, 99)) for _ in keys]
  q = rng.randrange(len(keys))
  pairs = ", ".join(f"{k}={v}" for k, v in zip(keys, vals))
  return f"{pairs} ; {keys[q]}", vals[q]


def majority(rng):
  """(input, answer): a list of colours -> the strict majority colour."""
  labels = ["red", "green", "blue"]
  n = rng.choice([3, 5, 7, 9])
  while True:
    seq = [rng.choice(labels) for _ in range(n)]
    counts = sorted(((seq.count(l), l) for l in labels), reverse=True)
    if counts[0][0] > counts[1][0]:
      return " ".join(seq), counts[0][1]


def every_second(rng):
  """(input, answer): words -> every second word."""
  words = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
  return " ".join(words), " ".join(words[1::2])


def longest_word(rng):
  """(input, answer): words -> the (unique) longest word."""
  while True:
    words = rng.sample(WORDS, rng.randint(3, 6))
    lens = sorted((len(w) for w in words), reverse=True)
    if lens[0] > lens[1]:
      return " ".join(words), max(words, key=len)


@dataclasses.dataclass(frozen=True)
class SyntheticTask:
  name: str
  definition: str
  generate: Callable[[random.Random], tuple[str, str]]
