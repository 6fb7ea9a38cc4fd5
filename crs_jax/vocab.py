"""A small SentencePiece vocabulary trained on the bootstrap corpus, so the embedded tiny
backbone reads about 3-4 bytes per token instead of one (shorter sequences, faster CPU runs).
Real backbones (Gemma 3) keep their own vocabulary.

Ids follow seqio's SentencePiece convention (pad 0, eos 1, unk 2, no BOS); byte fallback makes
every string encodable; the identity normaliser and no whitespace folding keep decode(encode(x))
== x for the newline-separated prompts."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Iterable

import sentencepiece as spm


def train_sentencepiece(texts: Iterable[str], path: str, vocab_size: int = 1024) -> str:
  """Trains a BPE model on `texts` and writes it atomically to `path` (a .model file)."""
  d = tempfile.mkdtemp(prefix=".tmp_spm_", dir=os.path.dirname(os.path.abspath(path)) or ".")
  try:
    prefix = os.path.join(d, "m")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)), model_prefix=prefix, vocab_size=vocab_size,
        model_type="bpe", byte_fallback=True, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        split_by_whitespace=True, character_coverage=1.0, max_sentence_length=1 << 16,
        user_defined_symbols=["\n"], minloglevel=2, num_threads=1)
    os.replace(prefix + ".model", path)
  finally:
    shutil.rmtree(d, ignore_errors=True)
  return path
