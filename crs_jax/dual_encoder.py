"""Dense retrieval for RecLLM: a dual encoder on the backbone (conversation vs item text,
trained contrastively) over an index of every item; adding items embeds only the new ones.

Towers. A frozen feature encoder `features(texts) -> [n, F]` (the backbone's mean-pooled final
hidden states, `mode_jax.dataeval.embed.BackboneEncoder`, or any other, e.g. hashed n-grams)
is shared by both towers; each tower standardises the features (mean / std of the training
texts) and maps them with its own trained matrix to D dims, then l2-normalises:

    q(c) = normalize(((f(c) - mu_q) / sd_q) W_q)      e(i) = normalize(((f(i) - mu_i) / sd_i) W_i)

Training (InfoNCE with in-batch negatives, both directions, as in dual-encoder retrieval):
pairs (conversation so far, the item the user accepted) from logged sessions; a batch holds
each item at most once, so no positive is ever used as another row's negative;

    loss = 1/2 [CE(softmax_j(q_b . e_j / tau), b) + CE(softmax_b(q_b . e_j / tau), j = b)]

`train_backbone` instead fine-tunes the backbone itself: LoRA adapters (shared by the towers)
and the two projections train on the same loss, features being the adapted backbone's
mean-pooled states (the frozen-feature version above is its linear probe).

Retrieval: the k items of largest q(c) . e(i) (`DenseIndex.search`); `DenseIndex.add` embeds
new items with the trained item tower (no retraining; they are found if their text is like
the training items').
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from crs_jax import catalogue as catalogue_lib
from crs_jax import interfaces
from mode_jax.adapters import AdapterConfig
from mode_jax.adapters import params as adapter_params
from mode_jax.model import Transformer


def item_text(it: catalogue_lib.Item) -> str:
  """The item tower's text: the description, not the title. Measured
  (`benchmarks.crs_dense_retrieval`): with the title the item tower memorises titles, and
  items added after training came back for 0.11 of their sessions (0.58 for trained items);
  without it 0.41 (0.57)."""
  return it.description


def conversation_text(turns: Sequence) -> str:
  """What the user has said so far (the dense tower's query)."""
  return "\n".join(t.text for t in turns if isinstance(t, interfaces.UserTurn))


def retrieval_pair(s: interfaces.Session) -> Optional[tuple[str, str]]:
  """(conversation before the accepted item was shown, accepted item id), or None when the
  session ended without an acceptance (or the user had said nothing before it)."""
  acc = s.accepted()
  if acc is None:
    return None
  for k, t in enumerate(s.turns):
    if isinstance(t, interfaces.SystemTurn) and acc in t.items:
      text = conversation_text(s.turns[:k])
      return (text, acc) if text else None
  return None


def training_pairs(sessions: Iterable[interfaces.Session]) -> list[tuple[str, str]]:
  """(conversation text, accepted item id) of the sessions that accepted an item."""
  return [p for p in map(retrieval_pair, sessions) if p is not None]


def _normalize(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclasses.dataclass
class DualEncoder:
  features: Callable[[Sequence[str]], np.ndarray]
  mu_q: np.ndarray
  sd_q: np.ndarray
  w_q: np.ndarray
  mu_i: np.ndarray
  sd_i: np.ndarray
  w_i: np.ndarray

  @property
  def dim(self) -> int:
    """Embedding width."""
    return self.w_i.shape[1]

  def queries(self, texts: Sequence[str]) -> np.ndarray:
    """Unit query embeddings [n, dim] of conversation texts."""
    f = np.asarray(self.features(list(texts)), np.float32)
    return _normalize(((f - self.mu_q) / self.sd_q) @ self.w_q)

  def items(self, texts: Sequence[str]) -> np.ndarray:
    """Unit item embeddings [n, dim] of item texts."""
    f = np.asarray(self.features(list(texts)), np.float32)
    return _normalize(((f - self.mu_i) / self.sd_i) @ self.w_i)


def _unique_batches(item_idx: np.ndarray, batch: int, rng: np.random.Generator):
  """Row indices of a batch in which every item appears at most once."""
  order = rng.permutation(len(item_idx))
  seen, rows = set(), []
  for r in order:
    if item_idx[r] not in seen:
      seen.add(item_idx[r])
      rows.append(r)
      if len(rows) == batch:
        break
  return np.asarray(rows)


def _pair_data(pairs: Sequence[tuple[str, str]], items: dict[str, str]):
  if len(pairs) < 2:
    raise ValueError(f"dual encoder: {len(pairs)} training pairs (need at least 2)")
  missing = sorted({i for _, i in pairs} - set(items))
  if missing:
    raise ValueError(f"dual encoder: training pairs name items not in the catalogue: "
                     f"{missing[:3]}")
  ids = sorted({i for _, i in pairs})
  pos = {i: k for k, i in enumerate(ids)}
  return ids, np.asarray([pos[i] for _, i in pairs])


def info_nce(q, e, temperature: float):
  """Symmetric in-batch InfoNCE of l2-normalised rows q [B, D] and e [B, D] (row b's positive
  is e[b])."""
  q = q / jnp.maximum(jnp.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
  e = e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), 1e-12)
  logits = q @ e.T / temperature
  labels = jnp.arange(q.shape[0])
  ce = optax.softmax_cross_entropy_with_integer_labels
  return 0.5 * (ce(logits, labels).mean() + ce(logits.T, labels).mean())


def _fit(loss_fn, params, batches, *, steps: int, lr: float, log: Callable, frozen=None):
  """Adam on `loss_fn(params, frozen, *batch)` over `batches()` (a fresh batch per call);
  `frozen` (e.g. the backbone) is an argument of the jitted step, not a baked-in constant."""
  opt = optax.adam(lr)
  state = opt.init(params)

  @jax.jit
  def step(p, s, fz, *batch):
    loss, g = jax.value_and_grad(loss_fn)(p, fz, *batch)
    upd, s = opt.update(g, s, p)
    return optax.apply_updates(p, upd), s, loss

  losses = []
  for t in range(steps):
    params, state, loss = step(params, state, frozen, *batches())
    losses.append(float(loss))
    if (t + 1) % 100 == 0:
      log(f"dual encoder step {t + 1}/{steps}: loss {losses[-1]:.3f}")
  return jax.device_get(params), losses


def train(features: Callable, pairs: Sequence[tuple[str, str]], items: dict[str, str], *,
          dim: int = 64, steps: int = 400, batch: int = 64, lr: float = 1e-2,
          temperature: float = 0.05, seed: int = 0, log: Callable = lambda m: None
          ) -> tuple[DualEncoder, list[float]]:
  """Trains the two projections on frozen features for (conversation, item id) `pairs`;
  `items`: id -> text. Returns the encoder and the loss per step."""
  ids, item_idx = _pair_data(pairs, items)
  fq = np.asarray(features([c for c, _ in pairs]), np.float32)
  fi = np.asarray(features([items[i] for i in ids]), np.float32)
  mu_q, sd_q = fq.mean(0), fq.std(0) + 1e-6
  mu_i, sd_i = fi.mean(0), fi.std(0) + 1e-6
  zq, zi = (fq - mu_q) / sd_q, (fi - mu_i) / sd_i
  rng = np.random.default_rng(seed)
  k1, k2 = jax.random.split(jax.random.key(seed))
  f_dim = fq.shape[1]
  params = {"w_q": jax.random.normal(k1, (f_dim, dim)) / np.sqrt(f_dim),
            "w_i": jax.random.normal(k2, (f_dim, dim)) / np.sqrt(f_dim)}

  def batches():
    rows = _unique_batches(item_idx, batch, rng)
    return zq[rows], zi[item_idx[rows]]

  p, losses = _fit(lambda p, _, q, e: info_nce(q @ p["w_q"], e @ p["w_i"], temperature),
                   params, batches, steps=steps, lr=lr, log=log)
  return DualEncoder(features, mu_q, sd_q, np.asarray(p["w_q"]), mu_i, sd_i,
                     np.asarray(p["w_i"])), losses


class BackboneDualEncoder:
  """Both towers on the LoRA-adapted backbone (shared adapters, own projections)."""

  def __init__(self, cfg, base, adapter_cfg, params: dict, vocab, max_len: int):
    self.vocab, self.max_len, self.params, self.base = vocab, max_len, params, base
    model = Transformer(cfg, adapter=adapter_cfg)

    def pooled(p, base, toks):
      full = adapter_params.combine(base, p["adapter"], where="dual encoder")
      seg = (toks > 0).astype(jnp.int32)
      pos = jnp.broadcast_to(jnp.arange(toks.shape[1]), toks.shape)
      h = model.apply({"params": full}, toks, segment_ids=seg, positions=pos, head=False)
      m = seg.astype(jnp.float32)[..., None]
      return (h.astype(jnp.float32) * m).sum(1) / jnp.maximum(m.sum(1), 1.0)
    self.pooled = pooled
    self._embed = jax.jit(lambda p, base, toks, w: pooled(p, base, toks) @ p[w],
                          static_argnums=3)

  @property
  def dim(self) -> int:
    """Embedding width."""
    return self.params["w_i"].shape[1]

  def tokens(self, texts: Sequence[str]) -> np.ndarray:
    """[n, max_len] ids, cut to max_len; 0 pads (the project's pad id, never in a text)."""
    out = np.zeros((len(texts), self.max_len), np.int32)
    for r, t in enumerate(texts):
      ids = list(self.vocab.encode(t))[:self.max_len]
      out[r, :len(ids)] = ids
    return out

  def _vecs(self, texts, w: str, batch: int = 64) -> np.ndarray:
    toks = self.tokens(list(texts))
    rows = [np.asarray(self._embed(self.params, self.base, toks[i:i + batch], w))
            for i in range(0, len(toks), batch)]
    return _normalize(np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32))

  def queries(self, texts: Sequence[str]) -> np.ndarray:
    """Unit query embeddings [n, dim] of conversation texts."""
    return self._vecs(texts, "w_q")

  def items(self, texts: Sequence[str]) -> np.ndarray:
    """Unit item embeddings [n, dim] of item texts."""
    return self._vecs(texts, "w_i")


def train_backbone(cfg, base: dict, vocab, pairs: Sequence[tuple[str, str]],
                   items: dict[str, str], *, rank: int = 8, dim: int = 64, steps: int = 300,
                   batch: int = 32, lr: float = 1e-3, temperature: float = 0.05,
                   max_len: int = 64, seed: int = 0, log: Callable = lambda m: None
                   ) -> tuple[BackboneDualEncoder, list[float]]:
  """Fine-tunes LoRA adapters (q, v; rank `rank`) on the backbone `base` together with the two
  projections on the InfoNCE loss. Padding is token id 0 (the project's pad id)."""
  ids, item_idx = _pair_data(pairs, items)
  acfg = AdapterConfig("lora", rank=rank, targets=("q", "v"), init="kaiming_uniform")
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  params = {"adapter": nn.meta.unbox(adapter_params.init_adapter(cfg, acfg, k1)),
            "w_q": jax.random.normal(k2, (cfg.embed_dim, dim)) / np.sqrt(cfg.embed_dim),
            "w_i": jax.random.normal(k3, (cfg.embed_dim, dim)) / np.sqrt(cfg.embed_dim)}
  enc = BackboneDualEncoder(cfg, base, acfg, params, vocab, max_len)
  tq, ti = enc.tokens([c for c, _ in pairs]), enc.tokens([items[i] for i in ids])
  rng = np.random.default_rng(seed)

  def batches():
    rows = _unique_batches(item_idx, batch, rng)
    return tq[rows], ti[item_idx[rows]]

  def loss_fn(p, base, q, e):
    return info_nce(enc.pooled(p, base, q) @ p["w_q"], enc.pooled(p, base, e) @ p["w_i"],
                    temperature)

  enc.params, losses = _fit(loss_fn, params, batches, steps=steps, lr=lr, log=log, frozen=base)
  return enc, losses


class DenseIndex:
  """Item embeddings of the item tower; top-k by inner product with the conversation's."""

  def __init__(self, encoder: DualEncoder, items: Sequence[catalogue_lib.Item] = ()):
    self.encoder = encoder
    self.ids: list[str] = []
    self._pos: dict = {}
    self.emb = np.zeros((0, encoder.dim), np.float32)
    self.add(items)

  def add(self, items: Sequence[catalogue_lib.Item]) -> None:
    """Adds new items to the index (no retraining); a duplicate id is a ValueError."""
    items = list(items)
    if not items:
      return
    dup = sorted({it.id for it in items if it.id in self._pos})
    if dup:
      raise ValueError(f"dense index: items already indexed: {dup[:3]}")
    self._pos.update({it.id: len(self.ids) + j for j, it in enumerate(items)})
    self.ids += [it.id for it in items]
    self.emb = np.concatenate([self.emb, self.encoder.items([item_text(it) for it in items])])

  def search_many(self, texts: Sequence[str], k: int = 10,
                  exclude: Sequence[str] = ()) -> list[list[str]]:
    """Per text, the ids of the k items of largest score, never one in `exclude`."""
    scores = self.encoder.queries(texts) @ self.emb.T
    if exclude:
      scores[:, [self._pos[i] for i in exclude if i in self._pos]] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[self.ids[j] for j in row if np.isfinite(scores[r, j])]
            for r, row in enumerate(top)]

  def search(self, text: str, k: int = 10, exclude: Sequence[str] = ()) -> list[str]:
    """The `k` best item ids for `text`, skipping `exclude`."""
    return self.search_many([text], k, exclude)[0]
