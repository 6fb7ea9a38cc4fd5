"""Policy backends: the in-process JAX sampler, and the OpenAI-compatible HTTP client against a
real local server (the project's FastAPI app serving the same sampler), with retries,
timeouts and malformed responses."""

import contextlib
import threading
import time

import jax
import jax.numpy as jnp
import pytest

import uvicorn

import helpers
from mode_jax.data.vocab import make_vocab
from mode_jax.model import Transformer, presets
from prm_jax.policy.base import TemplatePolicy, call_seed
from prm_jax.policy.http import OpenAICompletions, PolicyHTTPError, PolicyResponseError
from prm_jax.policy.jax_policy import SamplerBackend
from prm_jax.policy.server import make_app


@pytest.fixture(scope="module")
def backend():
  cfg = presets.get("tiny")
  params = Transformer(cfg).init(jax.random.key(0), jnp.ones((1, 8), jnp.int32))["params"]
  return SamplerBackend(cfg, params, make_vocab("bytes"), max_new_tokens=12, temperature=1.0)


@contextlib.contextmanager
def serve(app):
  port = helpers.free_port()
  server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
  t = threading.Thread(target=server.run, daemon=True)
  t.start()
  deadline = time.time() + 20
  while not server.started:
    if time.time() > deadline:
      raise RuntimeError("test server did not start")
    time.sleep(0.02)
  try:
    yield f"http://127.0.0.1:{port}"
  finally:
    server.should_exit = True
    t.join(10)


def test_sampler_backend_shapes_and_determinism(backend):
  prompts = ["Question: 1+1?\nAnswer:\n", "Question: 2+2?\nAnswer:\n4 + "]
  a = backend.complete(prompts, 3, seed=7)
  assert [len(x) for x in a] == [3, 3]
  assert all(0 < c.num_tokens <= 12 for x in a for c in x)
  assert backend.complete(prompts, 3, seed=7) == a
  assert backend.complete(prompts, 3, seed=8) != a
  pol = TemplatePolicy(backend)
  out = pol.rollout([("1+1?", ""), ("2+2?", "4 + ")], 3, seed=7)
  assert out == a          # same prompts through the template
  # Per-request seeds: a prompt's samples depend on its seed only, not on its batch
  # neighbours, its position or the chunking of rows (max_batch).
  both = backend.complete(prompts, 3, seed=[41, 42])
  assert backend.complete([prompts[1]], 3, seed=[42]) == [both[1]]
  assert backend.complete(prompts[::-1], 3, seed=[42, 41]) == both[::-1]
  backend.max_batch, keep = 2, backend.max_batch
  try:
    assert backend.complete(prompts, 3, seed=[41, 42]) == both
  finally:
    backend.max_batch = keep
  with pytest.raises(ValueError, match="1 per-request seeds for 2 requests"):
    backend.complete(prompts, 3, seed=[41])
  with pytest.raises(ValueError, match="template must contain"):
    TemplatePolicy(backend, "no placeholder")


def test_sampler_backend_reports_the_models_log_probability(backend):
  """A completion's logprob is the sum of log-softmax of the model's logits at its sampled
  tokens (temperature 1, no top-k / top-p: the sampling distribution is the model's),
  recomputed here by one teacher-forced forward pass over the same rows' tokens."""
  from prm_jax.policy.base import call_seed, request_seeds
  prompt = "Question: 1+1?\nAnswer:\n"
  (comps,) = backend.complete([prompt], 2, seed=3)
  ids = backend.encode(prompt)
  rows = [call_seed(s, j) for s in request_seeds(3, 1) for j in range(2)]
  out = backend.sampler.generate([ids, ids], max_new_tokens=12, temperature=1.0, top_k=0,
                                 top_p=1.0, rng=0, row_ids=rows, stop_strings=backend.stop)
  for r, c in enumerate(comps):
    n = int(out.lengths[r])
    gen = [int(t) for t in out.tokens[r, :n]]
    assert n == c.num_tokens
    toks = jnp.asarray([list(ids) + gen], jnp.int32)
    logits = Transformer(backend.sampler.cfg).apply({"params": backend.sampler.params}, toks)
    lp = jax.nn.log_softmax(logits[0].astype(jnp.float32), axis=-1)
    want = sum(float(lp[len(ids) - 1 + k, t]) for k, t in enumerate(gen))
    assert c.logprob == pytest.approx(want, abs=1e-3 * n)


def test_http_policy_against_local_server_matches_in_process(backend):
  prompts = ["Question: 3*3?\nAnswer:\n", "Question: 5-1?\nAnswer:\n"]
  with serve(make_app(backend)) as url:
    client = OpenAICompletions(url, "policy", max_tokens=12, temperature=1.0, max_concurrency=2)
    got = client.complete(prompts, 2, seed=11)
    with_lp = OpenAICompletions(url, "policy", max_tokens=12, logprobs=0).complete(
        prompts[:1], 2, seed=11)
  want = [backend.complete([p], 2, seed=call_seed(11, i))[0] for i, p in enumerate(prompts)]
  assert [[c.text for c in x] for x in got] == [[c.text for c in x] for x in want]
  assert with_lp[0] == want[0]                     # exact token counts via logprobs.tokens
  assert sum(c.num_tokens for c in got[0]) == sum(c.num_tokens for c in want[0])


def _fake_app(behaviour):
  import fastapi
  from fastapi.responses import JSONResponse
  app = fastapi.FastAPI()
  app.state.calls = 0

  @app.post("/v1/completions")
  def completions(body: dict):
    app.state.calls += 1
    return behaviour(app.state.calls, body, JSONResponse)
  return app


def test_http_retries_5xx_then_succeeds():
  def flaky(call, body, resp):
    if call <= 2:
      return resp({"error": "overloaded"}, status_code=503)
    return {"choices": [{"index": i, "text": f"t{i}"} for i in range(body["n"])],
            "usage": {"completion_tokens": 4 * body["n"]}}
  app = _fake_app(flaky)
  with serve(app) as url:
    out = OpenAICompletions(url, "m", backoff=0.01).complete(["p"], 2, seed=0)
  assert [c.text for c in out[0]] == ["t0", "t1"] and app.state.calls == 3
  assert [c.num_tokens for c in out[0]] == [4, 4]


@pytest.mark.parametrize("reply,error,match", [
    ({"nope": 1}, PolicyResponseError, "'choices' missing"),
    ({"choices": [{"text": "a"}]}, PolicyResponseError, "has 1 entries, expected n=2"),
    ({"choices": [{"text": 1}, {"text": "b"}]}, PolicyResponseError, r"choices\[0\]\.text"),
    ({"choices": [{"text": "a"}, {"text": "b"}]}, PolicyResponseError, "usage.completion_tokens"),
])
def test_http_malformed_responses_are_named(reply, error, match):
  with serve(_fake_app(lambda c, b, r: reply)) as url:
    with pytest.raises(error, match=match):
      OpenAICompletions(url, "m").complete(["p"], 2, seed=0)


def test_http_4xx_fails_at_once_and_timeouts_and_refused_connections_give_up():
  app = _fake_app(lambda c, b, r: r({"error": "bad model"}, status_code=404))
  with serve(app) as url:
    with pytest.raises(PolicyHTTPError, match="HTTP 404"):
      OpenAICompletions(url, "m", backoff=0.01).complete(["p"], 1, seed=0)
  assert app.state.calls == 1

  def slow(call, body, resp):
    time.sleep(0.5)
    return {"choices": [{"text": "x"}], "usage": {"completion_tokens": 1}}
  app = _fake_app(slow)
  with serve(app) as url:
    with pytest.raises(PolicyHTTPError, match="giving up after 2 attempts.*Timeout"):
      OpenAICompletions(url, "m", timeout=0.1, max_retries=1, backoff=0.01).complete(
          ["p"], 1, seed=0)
  port = helpers.free_port()
  with pytest.raises(PolicyHTTPError, match="ConnectionError"):
    OpenAICompletions(f"http://127.0.0.1:{port}", "m", max_retries=2, backoff=0.01).complete(
        ["p"], 1, seed=0)


def test_finish_reason_length_is_an_unfinished_rollout_end_to_end(backend):
  """The in-process server reports finish_reason truthfully (the tiny policy's 12-token limit
  cuts rows that did not stop), the HTTP client reads it back, and the search does not grade
  an unfinished rollout as wrong."""
  from prm_jax.omegaprm.tree import Tree
  from prm_jax.policy.base import Completion, call_seed, template_stops
  # The HTTP client seeds prompt i with call_seed(seed, i); ask the backend the same way.
  direct = [backend.complete(["Question: 1+1?\nAnswer:\n"], 4, seed=call_seed(3, i))[0]
            for i in range(2)]
  flags = [c.finished for row in direct for c in row]
  with serve(make_app(backend)) as url:
    via = OpenAICompletions(url, "policy", max_tokens=12, logprobs=0).complete(
        ["Question: 1+1?\nAnswer:\n"] * 2, 4, seed=3)
  assert [c.finished for row in via for c in row] == flags
  assert not all(flags)                     # 12 tokens without a stop: some are cut
  assert all(c.finished == (c.num_tokens < 12 or c.text.endswith("\n"))
             for row in direct for c in row)
  assert template_stops("Question: {question}\nAnswer:\n") == ("\nQuestion:",)
  assert template_stops("{question}\n") == ()
  tree = Tree("q", "7", lambda text, gold: text.endswith("7"), lambda t: [t])
  state = tree.root
  graded = tree.estimate(state, [Completion("so 7", 3), Completion("and then so", 12,
                                                                   finished=False)])
  assert len(graded) == 1 and state.rollouts == 1 and state.mc == 1.0


def test_gsm8k_grades_the_first_final_answer_of_a_runaway_generation():
  from prm_jax.graders import gsm8k_is_correct
  runaway = ("She has 3 + 15 = 18 apples. The answer is 18.\n\nQuestion: Tom has 2 cats and "
             "gets 3 more. How many?\nAnswer: 2 + 3 = 5. The answer is 5.")
  assert gsm8k_is_correct(runaway, "18") and not gsm8k_is_correct(runaway, "5")
  assert gsm8k_is_correct("3 + 15 = 18\n#### 18\n\nQuestion: ...\n#### 5", "18")


def _raw_server(port, script):
  """A bare HTTP/1.1 server on `port` answering connection i with script[min(i, -1)] (raw
  bytes; None = close at once), so a body can be cut mid-response."""
  import socketserver
  state = {"i": 0}

  class Handler(socketserver.BaseRequestHandler):
    def handle(self):
      data = b""
      while b"\r\n\r\n" not in data:
        chunk = self.request.recv(65536)
        if not chunk:
          return
        data += chunk
      head, _, body = data.partition(b"\r\n\r\n")
      length = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
                    if ln.lower().startswith(b"content-length")][0])
      while len(body) < length:
        body += self.request.recv(65536)
      reply = script[min(state["i"], len(script) - 1)]
      state["i"] += 1
      if reply is not None:
        self.request.sendall(reply)

  socketserver.TCPServer.allow_reuse_address = True
  server = socketserver.TCPServer(("127.0.0.1", port), Handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  return server, state


def _http(status, body=b"", headers=()):
  head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close",
          "Content-Type: application/json", *headers]
  return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_http_survives_drops_408_retry_after_and_a_server_that_comes_back():
  import json as _json
  good = _json.dumps({"choices": [{"index": 0, "text": "ok"}],
                      "usage": {"completion_tokens": 2}}).encode()
  cut = _http("200 OK", good)[:-10]                      # Content-Length says more: cut body
  port = helpers.free_port()
  url = f"http://127.0.0.1:{port}"
  client = OpenAICompletions(url, "m", backoff=0.05, max_backoff=0.2, retry_window=30)
  box = {}

  def late_start():                                       # down for 1.5 s, then up
    time.sleep(1.5)
    box["server"] = _raw_server(port, [cut, None, _http("408 Request Timeout"),
                                       _http("503 Service Unavailable", b"busy",
                                             ["Retry-After: 1"]),
                                       _http("200 OK", good)])
  threading.Thread(target=late_start, daemon=True).start()
  t0 = time.time()
  out = client.complete(["p"], 1, seed=0)
  server, state = box["server"]
  server.shutdown()
  assert [c.text for c in out[0]] == ["ok"] and state["i"] == 5
  assert time.time() - t0 >= 2.5                          # 1.5 s down + Retry-After 1 s
  # The window bounds the wait when the server never answers well.
  port = helpers.free_port()
  server, _ = _raw_server(port, [_http("503 Service Unavailable", b"x")])
  t0 = time.time()
  with pytest.raises(PolicyHTTPError, match="giving up after .* HTTP 503"):
    OpenAICompletions(f"http://127.0.0.1:{port}", "m", backoff=0.05, max_backoff=0.1,
                      retry_window=1.0).complete(["p"], 1, seed=0)
  server.shutdown()
  assert time.time() - t0 < 5
