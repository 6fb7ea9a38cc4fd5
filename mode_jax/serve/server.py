"""An OpenAI-compatible server for any checkpoint the project loads (`mode_jax.serve.load`),
so that the project's client, `openai`-style clients and vLLM / llama.cpp servers are
interchangeable:

    python -m mode_jax.serve.server --model=gemma3_270m --port=8000
    python -m mode_jax.serve.server --model=runs/default --port=8000      # base + its adapter
    python -m mode_jax.serve.server --model=/ckpt/dir --tokenizer=bytes   # a byte-level model

Endpoints: `GET /v1/models`; `POST /v1/completions` (prompt: a string or a list; n,
max_tokens, temperature, top_p, top_k, stop, seed, logprobs -> choices[i].logprobs with
tokens, token_logprobs and text_offset, echo (with max_tokens 0: the prompt's log-probs
only), and the extension field task_id for task-routed adapters); `POST /v1/chat/completions`
(messages in the checkpoint's chat template; logprobs: true -> choices[i].logprobs.content).
`usage` counts the prompt tokens (BOS included, each prompt once) and the generated tokens.
Seeds: every prompt of a request uses the request's `seed` as its own (as vLLM does), so a
one-prompt request with seed s samples what the in-process `complete([p], seeds=[s])` does;
a request without `seed` uses 0 (reproducible, unlike OpenAI's random default).
Concurrent requests are joined into one model call (`batcher.Batcher`; `--batching=false`
serves them one at a time). No `from __future__ import annotations` here: FastAPI resolves
the request models from real annotations.
"""

import contextlib
import time
from typing import Optional, Union

from absl import flags

from mode_jax import cli
from mode_jax.serve import api
from mode_jax.serve.batcher import Batcher


def _offsets(texts) -> list:
  out, at = [], 0
  for t in texts:
    out.append(at)
    at += len(t)
  return out


def _completion_choice(req, prompt: str, echoed: tuple, s: Optional[api.Sample],
                       index: int) -> dict:
  """One /v1/completions choice; with echo, the prompt and `echoed` = (its tokens, their
  log-probs) first."""
  text, tokens, lps = (prompt, list(echoed[0]), list(echoed[1])) if req.echo else ("", [], [])
  if s is not None:
    text += s.text
    tokens += list(s.tokens or ())
    lps += list(s.token_logprobs or ())
  ch = {"index": index, "text": text,
        "finish_reason": "length" if s is None or not s.finished else "stop"}
  if req.logprobs is not None:
    off = _offsets(tokens)
    ch["logprobs"] = {"tokens": tokens, "token_logprobs": lps, "text_offset": off,
                      "top_logprobs": None}
  return ch


def make_app(model, model_name: str = "model", *, batching: bool = True,
             max_prompts: int = 256):
  """The FastAPI app serving `model` (a `LocalModel`, or any `api.TextModel` for the
  completions endpoint alone)."""
  import fastapi
  import pydantic

  class Common(pydantic.BaseModel):
    model: str = model_name
    n: int = pydantic.Field(1, ge=1, le=1024)
    max_tokens: int = pydantic.Field(16, ge=0)
    temperature: float = pydantic.Field(1.0, ge=0.0)
    top_p: float = pydantic.Field(1.0, gt=0.0, le=1.0)
    top_k: int = pydantic.Field(0, ge=0)
    stop: Optional[Union[str, list[str]]] = None
    seed: Optional[int] = None
    task_id: Optional[int] = None

  class CompletionRequest(Common):
    prompt: Union[str, list[str]]
    logprobs: Optional[int] = None
    echo: bool = False

  class ChatRequest(Common):
    messages: list[dict]
    logprobs: Optional[bool] = None

  app = fastapi.FastAPI(title="mode_jax OpenAI-compatible server")
  batcher = Batcher(model, max_prompts=max_prompts, enabled=batching)
  app.state.batcher = batcher
  encode = getattr(model, "encode", None)

  def run(prompts, req, logprobs: bool) -> list:
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    try:
      seed = 0 if req.seed is None else req.seed
      return batcher.complete(prompts, req.n, seeds=[seed] * len(prompts),
                              task_ids=None if req.task_id is None else
                              [req.task_id] * len(prompts), max_tokens=req.max_tokens,
                              temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
                              stop=tuple(stop), logprobs=logprobs)
    except ValueError as e:
      raise fastapi.HTTPException(status_code=400, detail=str(e)) from None

  def usage(prompts, out) -> dict:
    pt = sum(len(encode(p)) for p in prompts) if encode else 0
    ct = sum(s.num_tokens for row in out for s in row if s is not None)
    return {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}

  @app.get("/v1/models")
  def models():
    return {"object": "list", "data": [{"id": model_name, "object": "model",
                                        "owned_by": "mode_jax"}]}

  @app.post("/v1/completions")
  def completions(req: CompletionRequest):
    prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
    if req.max_tokens == 0 and not req.echo:
      raise fastapi.HTTPException(status_code=400, detail="max_tokens=0 needs echo=true")
    if req.echo and req.logprobs is not None and not hasattr(model, "prompt_logprobs"):
      raise fastapi.HTTPException(status_code=400, detail="this model cannot echo log-probs")
    if req.max_tokens == 0:
      out = [[None] * req.n for _ in prompts]
    else:
      out = run(prompts, req, req.logprobs is not None)
    echoed = [model.prompt_logprobs(p, req.task_id) if req.echo and req.logprobs is not None
              else ((), ()) for p in prompts]            # once per prompt, not per sample
    choices = [_completion_choice(req, p, e, s, i * req.n + j)
               for i, (p, e, row) in enumerate(zip(prompts, echoed, out))
               for j, s in enumerate(row)]
    return {"id": f"cmpl-{time.time_ns()}", "object": "text_completion",
            "created": int(time.time()), "model": req.model, "choices": choices,
            "usage": usage(prompts, out)}

  @app.post("/v1/chat/completions")
  def chat_completions(req: ChatRequest):
    if not hasattr(model, "chat_prompt"):
      raise fastapi.HTTPException(status_code=400, detail="this model has no chat template")
    try:
      prompt = model.chat_prompt(req.messages)
    except ValueError as e:
      raise fastapi.HTTPException(status_code=400, detail=str(e)) from None
    if req.max_tokens == 0:
      raise fastapi.HTTPException(status_code=400, detail="max_tokens must be >= 1")
    out = run([prompt], req, bool(req.logprobs))
    choices = []
    for j, s in enumerate(out[0]):
      ch = {"index": j, "message": {"role": "assistant", "content": s.text},
            "finish_reason": "stop" if s.finished else "length"}
      if req.logprobs:
        ch["logprobs"] = {"content": [{"token": t, "logprob": lp} for t, lp in
                                      zip(s.tokens or (), s.token_logprobs or ())]}
      choices.append(ch)
    return {"id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion",
            "created": int(time.time()), "model": req.model, "choices": choices,
            "usage": usage([prompt], out)}

  return app


@contextlib.contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", timeout: float = 20.0):
  """Runs `app` with uvicorn in a daemon thread on a free port; yields its base URL and stops
  the server on exit (tests, benchmarks, notebooks)."""
  import socket
  import threading

  import uvicorn
  with socket.socket() as s:
    s.bind((host, 0))
    port = s.getsockname()[1]
  server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="error"))
  t = threading.Thread(target=server.run, daemon=True)
  t.start()
  deadline = time.time() + timeout
  while not server.started:
    if time.time() > deadline or not t.is_alive():
      raise RuntimeError(f"server on port {port} did not start")
    time.sleep(0.02)
  try:
    yield f"http://{host}:{port}"
  finally:
    server.should_exit = True
    t.join(10)


def main(argv=None):
  """The server's command line (module docstring)."""
  import uvicorn

  from mode_jax.serve.loading import load
  fv = flags.FlagValues()
  flags.DEFINE_string("model", None, "a pretrained name (gemma3_270m), an HF directory, a "
                      ".gguf file or a trained workdir", flag_values=fv)
  flags.mark_flag_as_required("model", flag_values=fv)
  flags.DEFINE_string("adapter", "", "a save_adapter directory (or a workdir holding one)",
                      flag_values=fv)
  flags.DEFINE_string("tokenizer", "", "override: 'bytes' or '<kind>:<path>'", flag_values=fv)
  flags.DEFINE_string("host", "127.0.0.1", "", flag_values=fv)
  flags.DEFINE_integer("port", 8000, "", flag_values=fv)
  flags.DEFINE_string("model_name", "", "the served model id (default: --model)",
                      flag_values=fv)
  flags.DEFINE_integer("max_batch", 256, "rows per sampler call", flag_values=fv)
  flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "weights and computation",
                    flag_values=fv)
  flags.DEFINE_bool("batching", True, "join concurrent requests into one model call",
                    flag_values=fv)
  args = cli.parse_argv(fv, argv)
  model = load(args.model, adapter=args.adapter, tokenizer=args.tokenizer,
               max_batch=args.max_batch, dtype=args.dtype)
  name = args.model_name or args.model
  print(f"serving {name} ({model.cfg.num_layers} layers, vocab {model.cfg.vocab_size:,}) on "
        f"http://{args.host}:{args.port}/v1", flush=True)
  uvicorn.run(make_app(model, name, batching=args.batching), host=args.host, port=args.port,
              log_level="warning")


if __name__ == "__main__":
  main()
