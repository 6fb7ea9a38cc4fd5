"""The tokenizer of a GGUF file, rebuilt from its metadata as a SentencePiece model.

llama.cpp stores a SentencePiece ("llama" tokenizer model: Gemma, Llama 2, Mistral) vocabulary
as three arrays that are the SentencePiece model's own pieces: `tokenizer.ggml.tokens`,
`.scores` and `.token_type` (llama.cpp's token types are SentencePiece's piece types: 1 normal,
2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte). `sentencepiece_model(path)` writes
them back into a `ModelProto` (BPE, byte fallback when byte pieces exist, identity
normaliser, `add_dummy_prefix` from `tokenizer.ggml.add_space_prefix`, whitespace escaped to
"\u2581"), so SentencePiece itself does the encoding. Two repairs:
- Gemma's user-defined whitespace-run pieces are stored as real spaces ("  "); SentencePiece
  matches user-defined pieces after escaping, so they are respelled as "\u2581\u2581" (the same
  repair transformers' GGUF converter makes).
- The unknown piece is typed control in Gemma files; SentencePiece needs it typed unknown.
- The special pieces are named in the trainer spec (`eos_piece` = "<eos>" ...): SentencePiece
  looks its bos/eos/pad ids up by piece string, so without them `eos_id` was -1 and fine-tuning
  targets got no EOS (a model that never learns to stop).

Tested: the same ids as transformers' own GGUF tokenizer conversion on code, unicode, emoji and
runs of spaces / newlines. One deliberate difference: control-token text in the input ("<eos>")
stays text here (SentencePiece never emits control ids from text), as seqio vocabularies do;
transformers turns it into the control id.

Byte-level BPE GGUFs ("gpt2": Llama 3, Qwen) are not rebuilt yet: use the checkpoint's
tokenizer.json (`make_vocab("hf", ...)`).
"""

from __future__ import annotations

import hashlib
import os

from mode_jax.atomic_io import atomic_file
from mode_jax.caches import cache_dir   # noqa: F401  (also this module's public name)
from mode_jax.model.gguf_io import metadata, open_reader

_USER_DEFINED, _UNKNOWN, _BYTE = 4, 2, 6
_PROTO_VERSION = 2   # part of the cached file's name: bump when build_proto changes


def _fingerprint(path: str) -> str:
  st = os.stat(path)
  return hashlib.sha1(f"{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}".encode()
                      ).hexdigest()[:16]


def build_proto(meta: dict, where: str) -> bytes:
  """Serialised SentencePiece ModelProto of a GGUF file's metadata."""
  from sentencepiece import sentencepiece_model_pb2 as pb
  model = meta.get("tokenizer.ggml.model")
  if model != "llama":
    raise ValueError(f"{where}: tokenizer.ggml.model={model!r}; only SentencePiece ('llama') "
                     f"GGUF vocabularies are rebuilt (use the checkpoint's tokenizer.json for "
                     f"byte-level BPE)")
  for key in ("tokens", "scores", "token_type"):
    if f"tokenizer.ggml.{key}" not in meta:
      raise ValueError(f"{where}: metadata key 'tokenizer.ggml.{key}' is missing")
  tokens, scores, types = (meta[f"tokenizer.ggml.{k}"] for k in ("tokens", "scores",
                                                                  "token_type"))
  if not len(tokens) == len(scores) == len(types):
    raise ValueError(f"{where}: tokenizer.ggml tokens / scores / token_type lengths differ")
  unk = meta.get("tokenizer.ggml.unknown_token_id")
  m = pb.ModelProto()
  t = m.trainer_spec
  t.model_type = pb.TrainerSpec.BPE
  t.vocab_size = len(tokens)
  t.byte_fallback = _BYTE in set(types)
  t.allow_whitespace_only_pieces = True
  for name in ("unk", "bos", "eos", "pad"):
    key = "unknown" if name == "unk" else "padding" if name == "pad" else name
    v = meta.get(f"tokenizer.ggml.{key}_token_id")
    setattr(t, f"{name}_id", -1 if v is None else int(v))
    if v is not None and 0 <= int(v) < len(tokens):
      # SentencePiece resolves bos_id() / eos_id() / pad_id() through these piece strings
      # (defaults "<s>", "</s>", "<pad>"), not through the ids: without them Gemma's "<eos>"
      # is not found, eos_id() is -1 and seqio appends no EOS to targets.
      setattr(t, f"{name}_piece", str(tokens[int(v)]))
  n = m.normalizer_spec
  n.name = "identity"
  n.add_dummy_prefix = bool(meta.get("tokenizer.ggml.add_space_prefix", True))
  n.remove_extra_whitespaces = False
  n.escape_whitespaces = True
  seen = set()
  for i, (tok, score, typ) in enumerate(zip(tokens, scores, types)):
    if typ == _USER_DEFINED and tok and not tok.strip(" "):
      tok = "\u2581" * len(tok)
    if tok in seen:
      raise ValueError(f"{where}: token {tok!r} (id {i}) appears twice in tokenizer.ggml.tokens")
    seen.add(tok)
    p = m.pieces.add()
    p.piece, p.score, p.type = tok, float(score), _UNKNOWN if i == unk else int(typ)
  return m.SerializeToString()


def sentencepiece_model(path: str) -> str:
  """Path of the SentencePiece model rebuilt from the GGUF file `path` (written once into
  `cache_dir()`, atomically, keyed by the file's path, size and mtime)."""
  out = os.path.join(cache_dir(), "vocab", f"{os.path.basename(path)}.{_fingerprint(path)}"
                     f".v{_PROTO_VERSION}.model")
  if not os.path.exists(out):
    proto = build_proto(metadata(open_reader(path)), path)
    with atomic_file(out, "wb") as f:
      f.write(proto)
  return out
