"""OpenAI-compatible client as a `TextModel`: `POST {base_url}/v1/completions` or, with
`chat=True`, `/v1/chat/completions` (the APIs served by vLLM, SGLang, llama.cpp's server,
JetStream and `mode_jax.serve.server`).

    model = OpenAIClient("http://127.0.0.1:8000", "gemma3_270m")
    model.complete(prompts, n=4, max_tokens=64, temperature=1.0, stop=["\n\n"], seeds=[1, 2])
    model.score(prompts, continuations)        # completions API with echo (not chat)

One HTTP request per prompt (with `n` samples and the prompt's own seed), at most
`max_concurrency` in flight. Every transport error (refused or dropped connection, a body cut
mid-response, timeouts) and HTTP 408 / 429 / 5xx are retried with capped exponential backoff
and jitter (min(max_backoff, backoff * 2^attempt) x U[0.5, 1.5) seconds), honouring a
`Retry-After` header (seconds), for as long as `retry_window` seconds (default 10 minutes: a
vLLM restart must not end a long collection) and at most `max_retries` retries when that is
>= 0; other 4xx fail at once (`ServerError`). A response without a list of `n` choices with
string text raises `ResponseError` naming the field.

Token counts and log-probs come from the response's `logprobs` (always asked for: completions
`logprobs=0` -> `token_logprobs`, chat `logprobs=true` -> `content[i].logprob`); a server that
omits them gets the `usage.completion_tokens` shared out by text length (exact for n = 1) and
no log-probs. `finish_reason == "length"` is an unfinished sample. `task_ids` go out as the
project server's `task_id` extension field (other servers ignore unknown fields or refuse
them: then leave task_ids out).

`score` sends prompt + continuation with `echo`, `logprobs=0`, `max_tokens=1` and sums the
echoed log-probs of the tokens that start at or after the prompt's end (`text_offset`), as
lm-evaluation-harness does; the tokenisation is the server's of the joined text.
"""

from __future__ import annotations

import concurrent.futures as futures
import random
import time
from typing import Optional, Sequence

import numpy as np
import requests

from mode_jax.serve import api


class ServerError(RuntimeError):
  """The server answered with an error status, or retries ran out."""


class ResponseError(ValueError):
  """The server's response does not have the OpenAI shape."""


class OpenAIClient:
  """See the module docstring."""

  def __init__(self, base_url: str, model: str, *, chat: bool = False, api_key: str = "",
               timeout: float = 60.0, max_retries: int = -1, backoff: float = 0.5,
               max_concurrency: int = 8, retry_window: float = 600.0,
               max_backoff: float = 30.0, logprobs: bool = True):
    if max_concurrency < 1 or timeout <= 0 or retry_window < 0:
      raise ValueError("OpenAIClient: max_concurrency >= 1, timeout > 0, retry_window >= 0")
    self.base = base_url.rstrip("/")
    self.url = self.base + ("/v1/chat/completions" if chat else "/v1/completions")
    self.model, self.chat, self.want_logprobs = model, chat, logprobs
    self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
    self.retry_window, self.max_backoff = retry_window, max_backoff
    self.max_concurrency = max_concurrency
    self._jitter = random.Random()
    self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    self.session = requests.Session()
    for scheme in ("http://", "https://"):
      self.session.mount(scheme, requests.adapters.HTTPAdapter(pool_maxsize=max_concurrency))

  # ------------------------------------------------------------------------------ requests
  def body(self, prompt: str, n: int, seed: int, *, max_tokens: int, temperature: float,
           top_p: float, top_k: int = 0, stop: Sequence[str] = (),
           task_id: Optional[int] = None) -> dict:
    """The request body of one prompt (completions or chat)."""
    b = {"model": self.model, "n": n, "max_tokens": max_tokens, "temperature": temperature,
         "top_p": top_p, "seed": int(seed)}
    if self.chat:
      b["messages"] = [{"role": "user", "content": prompt}]
    else:
      b["prompt"] = prompt
    if self.want_logprobs:
      b["logprobs"] = True if self.chat else 0
    if top_k:
      b["top_k"] = top_k                 # vLLM / llama.cpp / the project's server extension
    if stop:
      b["stop"] = list(stop)
    if task_id is not None:
      b["task_id"] = int(task_id)
    return b

  def _delay(self, attempt: int, retry_after: Optional[str]) -> float:
    if retry_after is not None:
      try:
        return max(0.0, float(retry_after))
      except ValueError:
        pass                       # an HTTP date: fall back to the backoff
    return min(self.max_backoff, self.backoff * 2 ** attempt) * (0.5 + self._jitter.random())

  def post(self, body: dict, url: Optional[str] = None) -> dict:
    """POSTs `body` with retries (module docstring); the JSON reply."""
    url = url or self.url
    start, last, attempt = time.monotonic(), None, 0
    while True:
      retry_after = None
      try:
        r = self.session.post(url, json=body, headers=self.headers, timeout=self.timeout)
      except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
              requests.exceptions.ContentDecodingError) as e:
        last = f"{type(e).__name__}: {e}"
      else:
        if r.status_code in (408, 429) or r.status_code >= 500:
          last = f"HTTP {r.status_code}: {r.text[:200]}"
          retry_after = r.headers.get("Retry-After")
        elif r.status_code != 200:
          raise ServerError(f"{url}: HTTP {r.status_code}: {r.text[:500]}")
        else:
          try:
            return r.json()
          except ValueError:
            raise ResponseError(f"{url}: response is not JSON: {r.text[:200]!r}") from None
      delay = self._delay(attempt, retry_after)
      attempt += 1
      out_of_tries = 0 <= self.max_retries < attempt
      if out_of_tries or time.monotonic() - start + delay > self.retry_window:
        raise ServerError(f"{url}: giving up after {attempt} attempts in "
                          f"{time.monotonic() - start:.1f} s; last error: {last}")
      time.sleep(delay)

  # ------------------------------------------------------------------------------ replies
  def _choice(self, c: dict, i: int) -> tuple[str, Optional[list]]:
    """(text, token log-probs or None) of one choice."""
    where = f"{self.url}: field 'choices[{i}]"
    if self.chat:
      msg = c.get("message")
      text = msg.get("content") if isinstance(msg, dict) else None
      if not isinstance(text, str):
        raise ResponseError(f"{where}.message.content' missing or not a string")
      content = (c.get("logprobs") or {}).get("content") if isinstance(c.get("logprobs"),
                                                                       dict) else None
      lps = [t.get("logprob") for t in content] if isinstance(content, list) else None
    else:
      text = c.get("text")
      if not isinstance(text, str):
        raise ResponseError(f"{where}.text' missing or not a string")
      lp = c.get("logprobs")
      lps = lp.get("token_logprobs") if isinstance(lp, dict) else None
      if lps is None and isinstance(lp, dict) and isinstance(lp.get("tokens"), list):
        lps = [None] * len(lp["tokens"])
    return text, (list(lps) if isinstance(lps, list) else None)

  def parse(self, resp, n: int) -> list[api.Sample]:
    """The samples of a response; a malformed one is a ResponseError naming the field."""
    if not isinstance(resp, dict) or not isinstance(resp.get("choices"), list):
      raise ResponseError(f"{self.url}: response field 'choices' missing or not a list")
    choices = resp["choices"]
    if len(choices) != n:
      raise ResponseError(f"{self.url}: field 'choices' has {len(choices)} entries, "
                          f"expected n={n}")
    if not all(isinstance(c, dict) for c in choices):
      raise ResponseError(f"{self.url}: field 'choices' holds a non-object")
    choices = sorted(choices, key=lambda c: c.get("index", 0))
    parsed = [self._choice(c, i) for i, c in enumerate(choices)]
    counts = [None if lps is None else len(lps) for _, lps in parsed]
    if any(x is None for x in counts):
      total = (resp.get("usage") or {}).get("completion_tokens")
      if not isinstance(total, int):
        raise ResponseError(f"{self.url}: no per-token 'logprobs' and no integer "
                            "'usage.completion_tokens' to count generated tokens")
      chars = [max(1, len(t)) for t, _ in parsed]
      counts = [round(total * k / sum(chars)) for k in chars]
    out = []
    for c, (text, lps), k in zip(choices, parsed, counts):
      known = lps is not None and all(isinstance(x, (int, float)) for x in lps)
      out.append(api.Sample(text, int(k), finished=c.get("finish_reason") != "length",
                            logprob=float(np.sum(lps)) if known else None,
                            token_logprobs=tuple(lps) if known else None))
    return out

  # ------------------------------------------------------------------------------ TextModel
  def complete(self, prompts: Sequence[str], n: int = 1, *, max_tokens: int = 256,
               temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
               stop: Sequence[str] = (), seeds: api.Seeds = None,
               task_ids: Optional[Sequence[int]] = None,
               logprobs: bool = False) -> list[list[api.Sample]]:
    """One request per prompt (concurrently, each with its own seed); `n` samples each."""
    del logprobs                                 # always asked for (token counts)
    api.check_settings(n, max_tokens, temperature, top_p, top_k)
    seeds = api.request_seeds(seeds, len(prompts))
    if task_ids is not None and len(task_ids) != len(prompts):
      raise ValueError(f"{len(task_ids)} task ids for {len(prompts)} prompts")

    def one(i):
      body = self.body(prompts[i], n, seeds[i], max_tokens=max_tokens, temperature=temperature,
                       top_p=top_p, top_k=top_k, stop=stop,
                       task_id=None if task_ids is None else task_ids[i])
      return self.parse(self.post(body), n)
    with futures.ThreadPoolExecutor(self.max_concurrency) as ex:
      return list(ex.map(one, range(len(prompts))))

  def score(self, prompts: Sequence[str], continuations: Sequence[str],
            task_ids: Optional[Sequence[int]] = None) -> np.ndarray:
    """Summed log-probs of each continuation after its prompt (module docstring: `echo`)."""
    if len(prompts) != len(continuations):
      raise ValueError(f"score(): {len(prompts)} prompts, {len(continuations)} continuations")
    url = self.base + "/v1/completions"

    def one(i):
      body = {"model": self.model, "prompt": prompts[i] + continuations[i], "echo": True,
              "logprobs": 0, "max_tokens": 1, "temperature": 0.0}
      if task_ids is not None:
        body["task_id"] = int(task_ids[i])
      resp = self.post(body, url)
      try:
        lp = resp["choices"][0]["logprobs"]
        offsets, values = lp["text_offset"], lp["token_logprobs"]
      except (KeyError, IndexError, TypeError):
        raise ResponseError(f"{url}: echo reply lacks 'choices[0].logprobs.text_offset' / "
                            "'token_logprobs'") from None
      end = len(prompts[i] + continuations[i])
      picked = [v for o, v in zip(offsets, values) if len(prompts[i]) <= o < end]
      if any(v is None for v in picked):
        raise ResponseError(f"{url}: echoed token log-probs hold null inside the continuation")
      return float(np.sum(picked))
    with futures.ThreadPoolExecutor(self.max_concurrency) as ex:
      return np.array(list(ex.map(one, range(len(prompts)))), np.float64)
