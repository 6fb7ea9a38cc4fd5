"""The in-process backend of the text layer: a `mode_jax` model (any checkpoint the project
loads, optionally with adapters) sampled by `mode_jax.model.sampling.Sampler` and scored by
`mode_jax.model.scoring.ContinuationScorer`, with the checkpoint's own tokenizer, BOS and stop
ids.

    model = LocalModel(cfg, params, vocab, bos_id=2, name="gemma3_270m")
    model.complete(prompts, n=8, max_tokens=64, temperature=1.0, top_p=0.95, seeds=[1, 2])

Rows: sample j of prompt i draws from `api.call_seed(seed_i, j)` (the sampler's row id), so a
sample depends on (seed, prompt, sample index) only. All rows of a call go to the sampler
together, ordered by prompt length, in chunks of at most `max_batch`; identical prompts in a
chunk are prefilled once (prefix sharing: the n samples of a prompt, or rollouts from the same
search state). A prompt is BOS (when the checkpoint has one) + the prompt's ids; generation
stops at the checkpoint's EOS / end-of-turn ids and at the `stop` strings.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np

from mode_jax.data.vocab import check_vocab
from mode_jax.model import sampling, scoring
from mode_jax.serve import api, chat


class LocalModel:
  """`api.TextModel` over an in-process model (module docstring).

  Args:
    cfg, params: the model (params may include adapter leaves, with `adapter` their config).
    vocab: the checkpoint's tokenizer (seqio Vocabulary).
    bos_id: prepended to every prompt (None: nothing).
    name: shown in errors and by the server.
    max_batch: rows per sampler call.
    share_prefix: prefill identical prompts of a chunk once (see the module docstring).
    max_prompt_tokens: when > 0, a longer prompt keeps its last this many ids (BOS not
      counted): the context a model was trained with, the end of a dialogue mattering most.
    sampler_kw: passed to `Sampler` (devices, mesh, rules, min_batch, ...).
  """

  def __init__(self, cfg, params, vocab, *, adapter=None, bos_id: Optional[int] = None,
               name: str = "model", max_batch: int = 256, scorer_batch: int = 64,
               max_prompt_tokens: int = 0, share_prefix: bool = True, **sampler_kw):
    check_vocab(cfg, vocab, name)
    if max_batch < 1:
      raise ValueError(f"{name}: max_batch must be >= 1")
    self.sampler = sampling.Sampler(cfg, params, vocab=vocab, adapter=adapter, **sampler_kw)
    self.scorer = scoring.ContinuationScorer(self.sampler.cfg, self.sampler.params,
                                             adapter=adapter, batch_size=scorer_batch)
    self.cfg, self.vocab, self.adapter, self.bos_id = self.sampler.cfg, vocab, adapter, bos_id
    self.name, self.max_batch, self.max_prompt_tokens = name, max_batch, max_prompt_tokens
    self.share_prefix = share_prefix
    self.chat_family, self._specials = chat.special_ids(vocab)
    self.generated_tokens = 0

  @property
  def prefill_tokens(self) -> int:
    """Prompt tokens prefilled so far (after prefix sharing)."""
    return self.sampler.prefill_tokens

  def encode(self, text: str) -> list[int]:
    """BOS (if any) + the text's token ids (the last `max_prompt_tokens` of them)."""
    ids = self._encode_text(text)
    if self.max_prompt_tokens and len(ids) > self.max_prompt_tokens:
      ids = ids[-self.max_prompt_tokens:]
    return ([self.bos_id] if self.bos_id is not None else []) + ids

  def _encode_text(self, text: str) -> list[int]:
    """Token ids of `text`, chat turn markers (e.g. "<start_of_turn>") as their own ids."""
    if not self._specials or not any(m in text for m in self._specials):
      return [int(i) for i in self.vocab.encode(text)]
    pattern = "(" + "|".join(re.escape(m) for m in self._specials) + ")"
    ids = []
    for part in re.split(pattern, text):
      if part in self._specials:
        ids.append(self._specials[part])
      elif part:
        ids += [int(i) for i in self.vocab.encode(part)]
    return ids

  def chat_prompt(self, messages: Sequence[dict]) -> str:
    """`messages` in the checkpoint's chat template (ValueError when it has none)."""
    if self.chat_family is None:
      raise ValueError(f"{self.name}: its tokenizer has no chat template (no turn markers); "
                       "use /v1/completions")
    return chat.render(messages, self.chat_family)

  def complete(self, prompts: Sequence[str], n: int = 1, *, max_tokens: int = 256,
               temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
               stop: Sequence[str] = (), seeds: api.Seeds = None,
               task_ids: Optional[Sequence[int]] = None,
               logprobs: bool = False) -> list[list[api.Sample]]:
    """`n` samples of each prompt (see `api.TextModel`; temperature 0 is greedy)."""
    api.check_settings(n, max_tokens, temperature, top_p, top_k)
    if task_ids is not None and len(task_ids) != len(prompts):
      raise ValueError(f"{len(task_ids)} task ids for {len(prompts)} prompts")
    if not prompts:
      return []
    enc = [self.encode(p) for p in prompts]
    rows = [i for i in range(len(prompts)) for _ in range(n)]
    ids = api.sample_seeds(seeds, len(prompts), n)
    order = sorted(range(len(rows)), key=lambda r: len(enc[rows[r]]))
    out: list = [None] * len(rows)
    stop = tuple(stop)
    for start in range(0, len(order), self.max_batch):
      chunk = order[start:start + self.max_batch]
      res = self.sampler.generate(
          [enc[rows[r]] for r in chunk], max_new_tokens=max_tokens, temperature=temperature,
          top_k=top_k, top_p=top_p, rng=0, row_ids=[ids[r] for r in chunk], stop_strings=stop,
          task_ids=None if task_ids is None else [task_ids[rows[r]] for r in chunk],
          share_prefix=self.share_prefix)
      for k, r in enumerate(chunk):
        length = int(res.lengths[k])
        lps = res.logprobs[k, :length].astype(np.float64)
        extra = {}
        if logprobs:
          extra = dict(token_logprobs=tuple(float(x) for x in lps),
                       tokens=tuple(self.token_texts(res.tokens[k, :length])))
        out[r] = api.Sample(res.texts[k], length, finished=bool(res.finished[k]),
                            logprob=float(lps.sum()), **extra)
        self.generated_tokens += length
    return [out[i * n:(i + 1) * n] for i in range(len(prompts))]

  def token_texts(self, ids) -> list[str]:
    """Each token's text as it extends the decoded text (concatenated they give the decoded
    whole, leading spaces included)."""
    ids = [int(i) for i in ids]
    texts, before = [], ""
    for k in range(len(ids)):
      now = self.vocab.decode(ids[:k + 1])
      texts.append(now[len(before):] if now.startswith(before) else now)
      before = now
    return texts

  def score(self, prompts: Sequence[str], continuations: Sequence[str],
            task_ids: Optional[Sequence[int]] = None) -> np.ndarray:
    """log p(continuation_i | prompt_i) summed over its tokens (teacher-forced). Prompt and
    continuation are tokenised apart and concatenated as ids, as the trainer builds its rows
    (inputs ids + targets ids)."""
    if len(prompts) != len(continuations):
      raise ValueError(f"score(): {len(prompts)} prompts, {len(continuations)} continuations")
    if not prompts:
      return np.zeros((0,), np.float64)
    pairs = [(self.encode(p), [int(i) for i in self.vocab.encode(c)])
             for p, c in zip(prompts, continuations)]
    return self.scorer.logprobs(pairs, task_ids)

  def prompt_logprobs(self, text: str, task_id: Optional[int] = None) -> tuple[list, list]:
    """(token texts, log-probs) of `text`'s tokens teacher-forced (the first token's log-prob
    is None: nothing predicts it; after BOS it is scored). The server's `echo`."""
    ids = self.encode(text)
    has_bos = self.bos_id is not None
    lps = [float(x) for x in self.scorer.token_logprobs(
        [(ids[:1], ids[1:])], None if task_id is None else [task_id])[0]] if ids[1:] else []
    toks = self.token_texts(ids[1:] if has_bos else ids)
    return toks, (lps if has_bos else [None] + lps)
