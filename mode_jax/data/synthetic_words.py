"""The word-level synthetic suite: tasks for a pretrained subword model (the real default,
Gemma 3 270M), in the SNI style of `data.synthetic` (same example/split machinery).

The byte suite's character-level tasks (reverse a word, Caesar shift, sort digits) ask a subword
model to see inside its tokens; no adapter learns that in minutes of CPU training, and a
comparison where every method scores 0 says nothing. These tasks work on whole words, numbers
and everyday knowledge, with different skills (selection, ordering, lookup, counting,
classification, format conversion, arithmetic) and output formats (word lists, digits, labels,
ISO dates), so one shared adapter still meets interference and a router has something to
learn. A base model few-shot prompted gets some of them partly right (measured in the README),
none fully.
"""

from __future__ import annotations

from mode_jax.data.synthetic_gen import WORDS, SyntheticTask, every_second, kv_lookup, \
    longest_word, majority, number_words

_CATEGORIES = {
    "fruit": "apple banana cherry grape lemon mango orange peach pear plum".split(),
    "animal": "tiger horse rabbit eagle whale snake zebra camel wolf mouse".split(),
    "colour": "red green blue yellow purple brown black white pink grey".split(),
    "tool": "hammer saw drill wrench shovel axe chisel pliers rake ladder".split(),
    "country": "france japan brazil kenya canada india mexico egypt spain chile".split(),
}
_PLURALS = dict(
    cat="cats", dog="dogs", box="boxes", child="children", mouse="mice", city="cities",
    knife="knives", bus="buses", foot="feet", tooth="teeth", man="men", woman="women",
    baby="babies", leaf="leaves", wolf="wolves", dish="dishes", church="churches",
    story="stories", tomato="tomatoes", potato="potatoes", hero="heroes", goose="geese",
    person="people", sheep="sheep", fish="fish", day="days", key="keys", toy="toys",
    wife="wives", life="lives", glass="glasses", watch="watches", party="parties",
    lady="ladies", house="houses", car="cars", book="books", ox="oxen", cactus="cacti",
    half="halves")
_MONTHS = ("January February March April May June July August September October November "
           "December").split()
_NAMES = "anna ben carla david emma felix grace henry iris jack kate leo mia noah olga paul".split()


def _reverse_words(rng):
  words = [rng.choice(WORDS) for _ in range(rng.randint(3, 6))]
  return " ".join(words), " ".join(reversed(words))


def _sort_words(rng):
  words = rng.sample(WORDS, rng.randint(3, 5))
  return " ".join(words), " ".join(sorted(words))


def _word_categories(rng):
  labels = sorted(_CATEGORIES)
  picks = [rng.choice(labels) for _ in range(rng.randint(2, 4))]
  words = [rng.choice(_CATEGORIES[c]) for c in picks]
  return ", ".join(words), ", ".join(picks)


def _plurals(rng):
  words = rng.sample(sorted(_PLURALS), rng.randint(2, 4))
  return ", ".join(words), ", ".join(_PLURALS[w] for w in words)


def _date_iso(rng):
  y, m, d = rng.randint(1950, 2030), rng.randint(1, 12), rng.randint(1, 28)
  return f"{_MONTHS[m - 1]} {d}, {y}", f"{y:04d}-{m:02d}-{d:02d}"


def _number_words_small(rng):
  n = rng.randint(0, 9999) if rng.random() < 0.5 else rng.randint(0, 999)
  return number_words(n), str(n)


def _larger_number(rng):
  a = rng.randint(100, 9999)
  b = a + rng.choice([-1, 1]) * rng.randint(1, 999)
  while b < 0 or b == a:
    b = rng.randint(100, 9999)
  return f"{a} ; {b}", str(max(a, b))


def _add_small(rng):
  a, b = rng.randint(10, 99), rng.randint(10, 99)
  return f"{a} + {b}", str(a + b)


def _count_words(rng):
  n = rng.randint(2, 9)
  return " ".join(rng.choice(WORDS) for _ in range(n)), str(n)


def _who_has(rng):
  """A two-sentence story and a question: entity tracking over names and objects."""
  a, b = rng.sample(_NAMES, 2)
  x, y = rng.sample(WORDS, 2)
  q = rng.choice([x, y])
  return (f"{a.capitalize()} has the {x}. {b.capitalize()} has the {y}. Who has the {q}?",
          a.capitalize() if q == x else b.capitalize())


WORD_TASKS = (
    SyntheticTask("every_second_word", "Copy every second word of the sentence (the 2nd, 4th, "
                  "...), separated by spaces.", every_second),
    SyntheticTask("reverse_words", "Write the words in reverse order.", _reverse_words),
    SyntheticTask("sort_words", "Sort the words alphabetically.", _sort_words),
    SyntheticTask("longest_word", "Output the longest word of the list.", longest_word),
    SyntheticTask("majority_label", "Output the label that occurs most often in the list.",
                  majority),
    SyntheticTask("kv_lookup", "Given key=value pairs and a key after ';', output the value of "
                  "that key.", kv_lookup),
    SyntheticTask("number_words", "Convert the number written in English words to digits.",
                  _number_words_small),
    SyntheticTask("word_categories", "Name the category of each word: fruit, animal, colour, "
                  "tool or country.", _word_categories),
    SyntheticTask("plurals", "Give the plural of each noun.", _plurals),
    SyntheticTask("date_iso", "Rewrite the date in the format YYYY-MM-DD.", _date_iso),
    SyntheticTask("larger_number", "Output the larger of the two numbers.", _larger_number),
    SyntheticTask("add_two_digit", "Add the two numbers and give the sum.", _add_small),
    SyntheticTask("count_words", "Count the words in the sentence.", _count_words),
    SyntheticTask("who_has", "Answer the question about the story with a name.", _who_has),
)
