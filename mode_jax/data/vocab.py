"""`seqio.Vocabulary` implementations: bytes (the embedded default), SentencePiece, HF tokenizer.json.

    vocab = make_vocab("bytes")                                  # seqio.ByteVocabulary
    vocab = make_vocab("sentencepiece", "/ckpt/tokenizer.model") # Gemma / Llama 2 style
    vocab = make_vocab("hf", "/ckpt/tokenizer.json")             # Llama 3 / Qwen2 style
    vocab = make_vocab("gguf", "/models/gemma-3-270m.gguf")      # rebuilt from GGUF metadata

All follow seqio's conventions: `encode` adds no special tokens (EOS is appended by the feature
converter), `decode` stops at EOS. seqio pads with id 0; for tokenizers where 0 is a real token
(Llama 3's "!") the loss mask must come from the feature converter's weights, not from `ids != 0`.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import seqio
import tensorflow as tf

from mode_jax.data.gguf_vocab import sentencepiece_model

# Names tried, in order, when the EOS / BOS token of a tokenizer.json is not given.
_EOS_NAMES = ("<eos>", "</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>")
_BOS_NAMES = ("<bos>", "<s>", "<|begin_of_text|>")


class HFTokenizerVocabulary(seqio.Vocabulary):
  """A `tokenizers` tokenizer.json as a seqio Vocabulary (no `transformers` needed)."""

  def __init__(self, path: str, eos_token: Optional[str] = None,
               bos_token: Optional[str] = None, extra_ids: int = 0):
    from tokenizers import Tokenizer
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path}: tokenizer.json not found")
    try:
      self._tok = Tokenizer.from_file(path)
    except Exception as e:  # the tokenizers library raises its own exception types
      raise ValueError(f"{path}: not a valid tokenizer.json ({e})") from e
    self._path = path
    self._eos = self._find(eos_token, _EOS_NAMES, "eos_token")
    self._bos = self._find(bos_token, _BOS_NAMES, "bos_token")
    super().__init__(extra_ids=extra_ids)

  def _find(self, name, candidates, what) -> Optional[int]:
    if name is not None:
      i = self._tok.token_to_id(name)
      if i is None:
        raise ValueError(f"{self._path}: {what} {name!r} is not in the vocabulary")
      return i
    for c in candidates:
      i = self._tok.token_to_id(c)
      if i is not None:
        return i
    return None

  @property
  def eos_id(self) -> Optional[int]:
    """The tokenizer's EOS id (None when it has none)."""
    return self._eos

  @property
  def bos_id(self) -> Optional[int]:
    """The tokenizer's BOS id (None when it has none)."""
    return self._bos

  @property
  def unk_id(self) -> Optional[int]:
    """The id of the model's unknown token (None when it has none)."""
    model = self._tok.model
    unk = getattr(model, "unk_token", None)
    return self._tok.token_to_id(unk) if unk else None

  @property
  def _base_vocab_size(self) -> int:
    return self._tok.get_vocab_size(with_added_tokens=True)

  def _encode(self, s: str) -> Sequence[int]:
    s = s.decode() if isinstance(s, bytes) else s
    return self._tok.encode(s, add_special_tokens=False).ids

  def _decode(self, ids: Sequence[int]) -> str:
    return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)

  def _encode_tf(self, s: tf.Tensor) -> tf.Tensor:
    def enc(x):
      x = x.item() if isinstance(x, np.ndarray) else x
      return np.asarray(self._encode(x.decode("utf-8")), np.int32)
    if s.shape.rank != 0:
      return tf.map_fn(self._encode_tf, s,
                       fn_output_signature=tf.RaggedTensorSpec([None], tf.int32))
    out = tf.numpy_function(enc, [s], tf.int32, stateful=False)
    out.set_shape([None])
    return out

  def _decode_tf(self, ids: tf.Tensor) -> tf.Tensor:
    def dec(x):
      return np.asarray(self._decode(x.tolist()).encode("utf-8"), dtype=object)
    if ids.shape.rank != 1:
      return tf.map_fn(self._decode_tf, ids, fn_output_signature=tf.TensorSpec([], tf.string))
    out = tf.numpy_function(dec, [ids], tf.string, stateful=False)
    out.set_shape([])
    return out

  def __eq__(self, other) -> bool:
    return isinstance(other, HFTokenizerVocabulary) and other._path == self._path

  def __hash__(self) -> int:
    return hash(("hf", self._path))


def make_vocab(kind: str = "bytes", path: Optional[str] = None, **kw) -> seqio.Vocabulary:
  """kind: "bytes" | "sentencepiece" | "hf" (tokenizer.json) | "gguf" (a GGUF file's
  SentencePiece vocabulary, see `gguf_vocab`); path for all but bytes."""
  if kind == "bytes":
    return seqio.ByteVocabulary(**kw)
  if kind in ("sentencepiece", "hf", "gguf") and not path:
    raise ValueError(f"vocab kind {kind!r} needs a path")
  if kind == "sentencepiece":
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path}: SentencePiece model not found")
    return seqio.SentencePieceVocabulary(path, **kw)
  if kind == "hf":
    return HFTokenizerVocabulary(path, **kw)
  if kind == "gguf":
    return seqio.SentencePieceVocabulary(sentencepiece_model(path), **kw)
  raise ValueError(f"unknown vocab kind {kind!r}; use bytes, sentencepiece, hf or gguf")


# A checkpoint directory's record of its tokenizer (written by the project beside config.json),
# so that loading a checkpoint never guesses a vocabulary.
TOKENIZER_FILE = "mode_jax_tokenizer.json"
KINDS = ("bytes", "sentencepiece", "hf", "gguf")


def parse_vocab_spec(spec: str, where: str = "tokenizer") -> dict:
  """"bytes" or "<kind>:<path>" (sentencepiece, hf, gguf) -> {"kind", "path"}."""
  kind, _, path = spec.partition(":")
  if kind not in KINDS or (kind != "bytes" and not path):
    raise ValueError(f"{where}={spec!r}: expected 'bytes' or '<kind>:<path>' with kind in "
                     f"{KINDS[1:]}")
  return {"kind": kind, "path": path}


def save_vocab_spec(checkpoint_dir: str, kind: str, path: str = "",
                    bos_id: Optional[int] = None) -> None:
  """Records the checkpoint's tokenizer (kind, path, BOS) in `checkpoint_dir/TOKENIZER_FILE`."""
  import json
  if kind not in KINDS:
    raise ValueError(f"unknown vocab kind {kind!r}; use one of {KINDS}")
  os.makedirs(checkpoint_dir, exist_ok=True)
  tmp = os.path.join(checkpoint_dir, TOKENIZER_FILE + ".tmp")
  with open(tmp, "w") as f:
    json.dump({"kind": kind, "path": path or "", "bos_id": bos_id}, f, indent=2)
  os.replace(tmp, os.path.join(checkpoint_dir, TOKENIZER_FILE))


def vocab_spec(checkpoint_dir: str) -> Optional[dict]:
  """The recorded tokenizer of a checkpoint directory ({"kind", "path", "bos_id"}; a relative
  path is resolved against the directory), or what the directory holds (tokenizer.json,
  tokenizer.model), or None when it says nothing."""
  import json
  rec = os.path.join(checkpoint_dir, TOKENIZER_FILE)
  if os.path.exists(rec):
    with open(rec) as f:
      try:
        spec = json.load(f)
      except ValueError as e:
        raise ValueError(f"{rec}: not JSON ({e})") from None
    if spec.get("kind") not in KINDS:
      raise ValueError(f"{rec}: field 'kind' is {spec.get('kind')!r}, expected one of {KINDS}")
    path = spec.get("path") or ""
    if path and not os.path.isabs(path):
      path = os.path.join(checkpoint_dir, path)
    return {"kind": spec["kind"], "path": path, "bos_id": spec.get("bos_id")}
  for name, kind in (("tokenizer.json", "hf"), ("tokenizer.model", "sentencepiece")):
    if os.path.exists(os.path.join(checkpoint_dir, name)):
      return {"kind": kind, "path": os.path.join(checkpoint_dir, name), "bos_id": None}
  return None


class VocabularyMismatch(ValueError):
  """A tokenizer that cannot be the checkpoint's (e.g. the byte vocabulary on Gemma)."""


def check_vocab(cfg, vocab, name: str) -> None:
  """VocabularyMismatch unless `vocab` fits the model config `cfg`: its size at most the
  embedding rows and within 1% (or 1,024 ids) of them (checkpoints pad their embeddings a
  little; Qwen2 has 151,936 rows for 151,665 ids)."""
  size = int(vocab.vocab_size)
  rows = int(cfg.vocab_size)
  if size > rows or rows - size > max(1024, rows // 100):
    raise VocabularyMismatch(
        f"{name}: tokenizer {type(vocab).__name__} has {size:,} ids but the checkpoint's "
        f"embedding has {rows:,} rows: not this checkpoint's tokenizer (pass its own)")
