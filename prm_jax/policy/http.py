"""OpenAI-compatible completions client (`POST {base_url}/v1/completions`, the API served by
vLLM, SGLang, JetStream and `prm_jax.policy.server`), as a `Backend` for `TemplatePolicy`.

One HTTP request per prompt (with `n` samples), at most `max_concurrency` in flight. Every
transport error (refused or dropped connection, a body cut mid-response, timeouts) and HTTP
408 / 429 / 5xx are retried with capped exponential backoff and jitter
(min(max_backoff, backoff * 2^attempt) x U[0.5, 1.5) seconds), honouring a `Retry-After`
header (seconds), for as long as `retry_window` seconds (default 10 minutes: a vLLM restart
must not end a long collection) and at most `max_retries` retries when that is >= 0; other
4xx fail at once. A response without a list of `n`
choices with string `text` raises `PolicyResponseError` naming the field. Tokens per choice:
the length of `logprobs.tokens` when the server returns it (ask with `logprobs=0`), else the
response's `usage.completion_tokens` shared out by text length (exact for n = 1). A choice
with `finish_reason == "length"` is an unfinished solution (`Completion.finished` False).
"""

from __future__ import annotations

import concurrent.futures as futures
import random
import time
from typing import Optional, Sequence

import requests

from prm_jax.policy.base import Completion, request_seeds


class PolicyHTTPError(RuntimeError):
  """The server answered with an error status, or retries ran out."""


class PolicyResponseError(ValueError):
  """The server's response does not have the OpenAI completions shape."""


class OpenAICompletions:

  def __init__(self, base_url: str, model: str, *, max_tokens: int = 256,
               temperature: float = 1.0, top_p: float = 1.0, stop: Sequence[str] = (),
               api_key: str = "", timeout: float = 60.0, max_retries: int = -1,
               backoff: float = 0.5, max_concurrency: int = 8, logprobs: Optional[int] = None,
               retry_window: float = 600.0, max_backoff: float = 30.0):
    if max_concurrency < 1 or timeout <= 0 or retry_window < 0:
      raise ValueError("OpenAICompletions: max_concurrency >= 1, timeout > 0, retry_window >= 0")
    self.retry_window, self.max_backoff = retry_window, max_backoff
    self._jitter = random.Random()
    self.url = base_url.rstrip("/") + "/v1/completions"
    self.model, self.max_tokens, self.temperature, self.top_p = model, max_tokens, temperature, top_p
    self.stop, self.timeout = list(stop), timeout
    self.max_retries, self.backoff = max_retries, backoff
    self.max_concurrency, self.logprobs = max_concurrency, logprobs
    self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    self.session = requests.Session()
    self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=max_concurrency))
    self.session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=max_concurrency))

  def body(self, prompt: str, n: int, seed: int) -> dict:
    """The /v1/completions request body of one prompt."""
    b = {"model": self.model, "prompt": prompt, "n": n, "max_tokens": self.max_tokens,
         "temperature": self.temperature, "top_p": self.top_p, "seed": seed}
    if self.stop:
      b["stop"] = self.stop
    if self.logprobs is not None:
      b["logprobs"] = self.logprobs
    return b

  def _delay(self, attempt: int, retry_after: Optional[str]) -> float:
    if retry_after is not None:
      try:
        return max(0.0, float(retry_after))
      except ValueError:
        pass                       # an HTTP date: fall back to the backoff
    return min(self.max_backoff, self.backoff * 2 ** attempt) * (0.5 + self._jitter.random())

  def _post(self, body: dict) -> dict:
    start, last, attempt = time.monotonic(), None, 0
    while True:
      retry_after = None
      try:
        r = self.session.post(self.url, json=body, headers=self.headers, timeout=self.timeout)
      except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
              requests.exceptions.ContentDecodingError) as e:
        last = f"{type(e).__name__}: {e}"
      else:
        if r.status_code in (408, 429) or r.status_code >= 500:
          last = f"HTTP {r.status_code}: {r.text[:200]}"
          retry_after = r.headers.get("Retry-After")
        elif r.status_code != 200:
          raise PolicyHTTPError(f"{self.url}: HTTP {r.status_code}: {r.text[:500]}")
        else:
          try:
            return r.json()
          except ValueError:
            raise PolicyResponseError(
                f"{self.url}: response is not JSON: {r.text[:200]!r}") from None
      delay = self._delay(attempt, retry_after)
      attempt += 1
      out_of_tries = 0 <= self.max_retries < attempt
      if out_of_tries or time.monotonic() - start + delay > self.retry_window:
        raise PolicyHTTPError(f"{self.url}: giving up after {attempt} attempts in "
                              f"{time.monotonic() - start:.1f} s; last error: {last}")
      time.sleep(delay)

  def parse(self, resp, n: int) -> list[Completion]:
    """The completions of a response; a malformed one is a PolicyResponseError naming the field."""
    where = self.url
    if not isinstance(resp, dict) or not isinstance(resp.get("choices"), list):
      raise PolicyResponseError(f"{where}: response field 'choices' missing or not a list")
    choices = resp["choices"]
    if len(choices) != n:
      raise PolicyResponseError(f"{where}: field 'choices' has {len(choices)} entries, "
                                f"expected n={n}")
    for i, c in enumerate(choices):
      if not isinstance(c, dict) or not isinstance(c.get("text"), str):
        raise PolicyResponseError(f"{where}: field 'choices[{i}].text' missing or not a string")
    choices = sorted(choices, key=lambda c: c.get("index", 0))
    counts = []
    for c in choices:
      lp = c.get("logprobs")
      toks = lp.get("tokens") if isinstance(lp, dict) else None
      counts.append(len(toks) if isinstance(toks, list) else None)
    if any(x is None for x in counts):
      total = (resp.get("usage") or {}).get("completion_tokens")
      if not isinstance(total, int):
        raise PolicyResponseError(f"{where}: no 'choices[i].logprobs.tokens' and no integer "
                                  "'usage.completion_tokens' to count generated tokens")
      chars = [max(1, len(c["text"])) for c in choices]
      counts = [round(total * k / sum(chars)) for k in chars]
    return [Completion(c["text"], int(k), finished=c.get("finish_reason") != "length")
            for c, k in zip(choices, counts)]

  def complete(self, prompts: Sequence[str], n: int, *, seed) -> list[list[Completion]]:
    """One request per prompt (concurrently, each with its own seed); `n` completions each."""
    seeds = request_seeds(seed, len(prompts))    # one request per prompt, with its own seed

    def one(i):
      return self.parse(self._post(self.body(prompts[i], n, seeds[i])), n)
    with futures.ThreadPoolExecutor(self.max_concurrency) as ex:
      return list(ex.map(one, range(len(prompts))))
