"""The project's one text-generation layer: every package gets text out of a model through it.

    from mode_jax import serve
    model = serve.load("gemma3_270m")                     # in-process JAX, any checkpoint
    model = serve.OpenAIClient("http://host:8000", "m")   # any OpenAI-compatible server
    out = model.complete(["Q: 2+3?\nA:"], n=4, max_tokens=32, temperature=1.0, top_p=0.95,
                         stop=["\n"], seeds=[7])          # out[0][j]: text, num_tokens, ...
    lp = model.score(["Q: 2+3?\nA:"], [" 5"])             # summed log-probs of continuations

    python -m mode_jax.serve.server --model=gemma3_270m --port=8000   # serves any checkpoint

`api` (the `TextModel` protocol, `Sample`, per-request seeds), `local` (`LocalModel`: the
in-process sampler and scorer with the checkpoint's own tokenizer, BOS and stop ids),
`loading` (`load`: a pretrained name, an HF directory, a GGUF file, a trained workdir with its
adapter), `http` (`OpenAIClient`: completions or chat completions, retries), `server` (the
OpenAI-compatible server of any `TextModel`, batching concurrent requests), `chat` (chat
templates).
"""

from mode_jax.serve.api import Sample, TextModel, call_seed, request_seeds
from mode_jax.serve.http import OpenAIClient
from mode_jax.serve.loading import load
from mode_jax.serve.local import LocalModel

__all__ = ["Sample", "TextModel", "call_seed", "request_seeds", "OpenAIClient", "load",
           "LocalModel"]
