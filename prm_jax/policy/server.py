"""A small OpenAI-compatible completions server over any `Backend` (by default the in-process
JAX sampler), so that the HTTP policy, Beam workers and other tools can share one model:

    python -m prm_jax.policy.server --checkpoint=runs/policy/policy_model --port=8000

Serves `POST /v1/completions` (prompt: a string or a list; n, max_tokens, temperature, top_p,
stop, seed, logprobs -> choices[i].logprobs.tokens) and `GET /v1/models`. Requests are served
one at a time (the sampler batches the prompts and samples of one request). No `from __future__
import annotations` here: FastAPI resolves the request model from real annotations.
"""

import threading
import time
from typing import Optional, Union

from absl import flags

from mode_jax import cli
from prm_jax.policy.base import Completion


def make_app(backend, model_name: str = "policy"):
  """The FastAPI app serving `backend` as /v1/completions and /v1/models."""
  import fastapi
  import pydantic

  class CompletionRequest(pydantic.BaseModel):
    model: str = model_name
    prompt: Union[str, list[str]]
    n: int = pydantic.Field(1, ge=1, le=1024)
    max_tokens: int = pydantic.Field(16, ge=1)
    temperature: float = pydantic.Field(1.0, ge=0.0)
    top_p: float = pydantic.Field(1.0, gt=0.0, le=1.0)
    stop: Optional[Union[str, list[str]]] = None
    seed: Optional[int] = None
    logprobs: Optional[int] = None

  app = fastapi.FastAPI(title="prm_jax policy server")
  lock = threading.Lock()

  @app.get("/v1/models")
  def models():
    return {"object": "list", "data": [{"id": model_name, "object": "model"}]}

  @app.post("/v1/completions")
  def completions(req: CompletionRequest):
    prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    with lock:
      out: list[list[Completion]] = backend.complete(
          prompts, req.n, seed=req.seed if req.seed is not None else 0,
          max_tokens=req.max_tokens, temperature=req.temperature, top_p=req.top_p, stop=stop)
    choices = []
    for i, comps in enumerate(out):
      for j, c in enumerate(comps):
        ch = {"index": i * req.n + j, "text": c.text,
              "finish_reason": "stop" if c.finished else "length"}
        if req.logprobs is not None:
          ch["logprobs"] = {"tokens": [None] * c.num_tokens}
        choices.append(ch)
    gen = sum(c.num_tokens for comps in out for c in comps)
    return {"id": f"cmpl-{time.time_ns()}", "object": "text_completion",
            "created": int(time.time()), "model": req.model, "choices": choices,
            "usage": {"prompt_tokens": 0, "completion_tokens": gen, "total_tokens": gen}}

  return app


def main(argv=None):
  """The server's command line (module docstring): serves `--checkpoint` (+ `--adapter`) on
  `--host`:`--port`."""

  import uvicorn

  from prm_jax.policy.jax_policy import load_backend
  ap = flags.FlagValues()
  flags.DEFINE_string("checkpoint", None, "HF-format model directory", flag_values=ap)
  flags.mark_flag_as_required("checkpoint", flag_values=ap)
  flags.DEFINE_string("adapter", "", "optional save_adapter directory", flag_values=ap)
  flags.DEFINE_string("host", "127.0.0.1", "", flag_values=ap)
  flags.DEFINE_integer("port", 8000, "", flag_values=ap)
  flags.DEFINE_string("model_name", "policy", "", flag_values=ap)
  args = cli.parse_argv(ap, argv)
  backend = load_backend(args.checkpoint, adapter_dir=args.adapter)
  uvicorn.run(make_app(backend, args.model_name), host=args.host, port=args.port)


if __name__ == "__main__":
  main()
