"""OpenAI-compatible completions client (`POST {base_url}/v1/completions`, the API served by
vLLM, SGLang, JetStream and `prm_jax.policy.server`), as a `Backend` for `TemplatePolicy`.

One HTTP request per prompt (with `n` samples), at most `max_concurrency` in flight. Connection
errors, timeouts, 429 and 5xx are retried up to `max_retries` times with exponential backoff
(backoff * 2^attempt seconds); other 4xx fail at once. A response without a list of `n`
choices with string `text` raises `PolicyResponseError` naming the field. Tokens per choice:
the length of `logprobs.tokens` when the server returns it (ask with `logprobs=0`), else the
response's `usage.completion_tokens` shared out by text length (exact for n = 1). A choice
with `finish_reason == "length"` is an unfinished solution (`Completion.finished` False).
"""

from __future__ import annotations

import concurrent.futures as futures
import time
from typing import Optional, Sequence

import requests

from prm_jax.policy.base import Completion, call_seed


class PolicyHTTPError(RuntimeError):
  """The server answered with an error status, or retries ran out."""


class PolicyResponseError(ValueError):
  """The server's response does not have the OpenAI completions shape."""


class OpenAICompletions:

  def __init__(self, base_url: str, model: str, *, max_tokens: int = 256,
               temperature: float = 1.0, top_p: float = 1.0, stop: Sequence[str] = (),
               api_key: str = "", timeout: float = 60.0, max_retries: int = 4,
               backoff: float = 0.5, max_concurrency: int = 8, logprobs: Optional[int] = None):
    if max_concurrency < 1 or max_retries < 0 or timeout <= 0:
      raise ValueError("OpenAICompletions: max_concurrency >= 1, max_retries >= 0, timeout > 0")
    self.url = base_url.rstrip("/") + "/v1/completions"
    self.model, self.max_tokens, self.temperature, self.top_p = model, max_tokens, temperature, top_p
    self.stop, self.timeout, self.max_retries, self.backoff = list(stop), timeout, max_retries, backoff
    self.max_concurrency, self.logprobs = max_concurrency, logprobs
    self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    self.session = requests.Session()
    self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=max_concurrency))
    self.session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=max_concurrency))

  def body(self, prompt: str, n: int, seed: int) -> dict:
    b = {"model": self.model, "prompt": prompt, "n": n, "max_tokens": self.max_tokens,
         "temperature": self.temperature, "top_p": self.top_p, "seed": seed}
    if self.stop:
      b["stop"] = self.stop
    if self.logprobs is not None:
      b["logprobs"] = self.logprobs
    return b

  def _post(self, body: dict) -> dict:
    last = None
    for attempt in range(self.max_retries + 1):
      if attempt:
        time.sleep(self.backoff * 2 ** (attempt - 1))
      try:
        r = self.session.post(self.url, json=body, headers=self.headers, timeout=self.timeout)
      except (requests.ConnectionError, requests.Timeout) as e:
        last = f"{type(e).__name__}: {e}"
        continue
      if r.status_code == 429 or r.status_code >= 500:
        last = f"HTTP {r.status_code}: {r.text[:200]}"
        continue
      if r.status_code != 200:
        raise PolicyHTTPError(f"{self.url}: HTTP {r.status_code}: {r.text[:500]}")
      try:
        return r.json()
      except ValueError:
        raise PolicyResponseError(f"{self.url}: response is not JSON: {r.text[:200]!r}") from None
    raise PolicyHTTPError(f"{self.url}: giving up after {self.max_retries + 1} attempts; "
                          f"last error: {last}")

  def parse(self, resp, n: int) -> list[Completion]:
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

  def complete(self, prompts: Sequence[str], n: int, *, seed: int) -> list[list[Completion]]:
    def one(i):
      return self.parse(self._post(self.body(prompts[i], n, call_seed(seed, i))), n)
    with futures.ThreadPoolExecutor(self.max_concurrency) as ex:
      return list(ex.map(one, range(len(prompts))))
