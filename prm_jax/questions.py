"""The key two questions are compared under (held-out splits, SFT validation slices, evaluation
sets left out of training data): lower case, whitespace collapsed."""


def normalize_question(text: str) -> str:
  """The key two questions are "the same" under: lower case, whitespace collapsed."""
  return " ".join(str(text).lower().split())
