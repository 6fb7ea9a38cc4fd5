"""The OpenAI-compatible client (`mode_jax.serve.OpenAIClient`) against real local servers
that misbehave: retries of 5xx / 408 / dropped connections / cut bodies with backoff and
Retry-After, the retry window, 4xx failing at once, timeouts, and malformed responses named
by field."""

import threading
import time

import pytest

import helpers
from mode_jax.serve.server import serve_in_thread as serve
from mode_jax.serve.http import OpenAIClient, ResponseError, ServerError


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
    out = OpenAIClient(url, "m", backoff=0.01).complete(["p"], 2, seeds=0)
  assert [c.text for c in out[0]] == ["t0", "t1"] and app.state.calls == 3
  assert [c.num_tokens for c in out[0]] == [4, 4]


@pytest.mark.parametrize("reply,error,match", [
    ({"nope": 1}, ResponseError, "'choices' missing"),
    ({"choices": [{"text": "a"}]}, ResponseError, "has 1 entries, expected n=2"),
    ({"choices": [{"text": 1}, {"text": "b"}]}, ResponseError, r"choices\[0\]\.text"),
    ({"choices": [{"text": "a"}, {"text": "b"}]}, ResponseError, "usage.completion_tokens"),
    ({"choices": ["a", "b"]}, ResponseError, "non-object"),
])
def test_http_malformed_responses_are_named(reply, error, match):
  with serve(_fake_app(lambda c, b, r: reply)) as url:
    with pytest.raises(error, match=match):
      OpenAIClient(url, "m").complete(["p"], 2, seeds=0)


def test_http_4xx_fails_at_once_and_timeouts_and_refused_connections_give_up():
  app = _fake_app(lambda c, b, r: r({"error": "bad model"}, status_code=404))
  with serve(app) as url:
    with pytest.raises(ServerError, match="HTTP 404"):
      OpenAIClient(url, "m", backoff=0.01).complete(["p"], 1, seeds=0)
  assert app.state.calls == 1

  def slow(call, body, resp):
    time.sleep(0.5)
    return {"choices": [{"text": "x"}], "usage": {"completion_tokens": 1}}
  app = _fake_app(slow)
  with serve(app) as url:
    with pytest.raises(ServerError, match="giving up after 2 attempts.*Timeout"):
      OpenAIClient(url, "m", timeout=0.1, max_retries=1, backoff=0.01).complete(
          ["p"], 1, seeds=0)
  port = helpers.free_port()
  with pytest.raises(ServerError, match="ConnectionError"):
    OpenAIClient(f"http://127.0.0.1:{port}", "m", max_retries=2, backoff=0.01).complete(
        ["p"], 1, seeds=0)


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
  client = OpenAIClient(url, "m", backoff=0.05, max_backoff=0.2, retry_window=30)
  box = {}

  def late_start():                                       # down for 1.5 s, then up
    time.sleep(1.5)
    box["server"] = _raw_server(port, [cut, None, _http("408 Request Timeout"),
                                       _http("503 Service Unavailable", b"busy",
                                             ["Retry-After: 1"]),
                                       _http("200 OK", good)])
  threading.Thread(target=late_start, daemon=True).start()
  t0 = time.time()
  out = client.complete(["p"], 1, seeds=0)
  server, state = box["server"]
  server.shutdown()
  assert [c.text for c in out[0]] == ["ok"] and state["i"] == 5
  assert time.time() - t0 >= 2.5                          # 1.5 s down + Retry-After 1 s
  # The window bounds the wait when the server never answers well.
  port = helpers.free_port()
  server, _ = _raw_server(port, [_http("503 Service Unavailable", b"x")])
  t0 = time.time()
  with pytest.raises(ServerError, match="giving up after .* HTTP 503"):
    OpenAIClient(f"http://127.0.0.1:{port}", "m", backoff=0.05, max_backoff=0.1,
                      retry_window=1.0).complete(["p"], 1, seeds=0)
  server.shutdown()
  assert time.time() - t0 < 5
