"""Step splitters: a solution text -> pieces that concatenate back to exactly that text.

The search probes prefixes made of whole pieces, so a piece keeps its delimiter: "a\nb\nc"
splits into ["a\n", "b\n", "c"]. Two splitters: by a delimiter (default newline, one reasoning
step per line) and by token spans (the OmegaPRM paper's "about (mean solution length)/16
tokens" pieces, for solutions without clean step boundaries).
"""

from __future__ import annotations

from typing import Callable, Sequence

Splitter = Callable[[str], list]


def by_delimiter(delimiter: str = "\n") -> Splitter:
  """A splitter that cuts text after each `delimiter` (kept with its step)."""
  if not delimiter:
    raise ValueError("step delimiter must be a non-empty string")

  def split(text: str) -> list[str]:
    parts = text.split(delimiter)
    pieces = [p + delimiter for p in parts[:-1]]
    if parts[-1]:
      pieces.append(parts[-1])
    return pieces
  return split


def by_token_spans(encode: Callable[[str], Sequence[int]], decode: Callable[[Sequence[int]], str],
                   span: int) -> Splitter:
  """Pieces of `span` tokens. Piece boundaries are where the decoded token prefixes end, so
  the pieces concatenate to the text even when decoding is not per-token reversible."""
  if span < 1:
    raise ValueError(f"token span must be >= 1, got {span}")

  def split(text: str) -> list[str]:
    ids = list(encode(text))
    cuts = [0]
    for end in range(span, len(ids), span):
      cut = len(decode(ids[:end]))
      if cuts[-1] < cut < len(text) and text.startswith(decode(ids[:end])):
        cuts.append(cut)
    cuts.append(len(text))
    return [text[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]
  return split


def span_for(mean_tokens: float, pieces: int = 16) -> int:
  """The paper's span: about (mean solution length in tokens) / 16, at least one token."""
  return max(1, round(mean_tokens / pieces))


def make_splitter(kind: str = "delimiter", *, delimiter: str = "\n", vocab=None,
                  span: int = 0) -> Splitter:
  """From config: kind "delimiter" or "token_spans" (needs a vocab with encode/decode)."""
  if kind == "delimiter":
    return by_delimiter(delimiter)
  if kind == "token_spans":
    if vocab is None:
      raise ValueError("splitter kind 'token_spans' needs a vocab")
    return by_token_spans(vocab.encode, vocab.decode, span)
  raise ValueError(f"splitter kind {kind!r}: expected 'delimiter' or 'token_spans'")
