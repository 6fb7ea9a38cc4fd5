"""The project's OpenAI-compatible server under concurrent clients, with and without joining
concurrent requests into one model call (`mode_jax.serve.batcher`):

    python -m benchmarks.server_batching [--clients=8] [--requests=4] [--max_tokens=32]

The server (`mode_jax.serve.server.make_app` over `serve.load(--model)`, in this process on a
free port) is driven by `--clients` threads, each sending `--requests` one-prompt completions
(different prompts, sampled at temperature 1, top-p 0.95) with the project's client. Printed
per setting: wall seconds, generated tokens/s over all clients, model calls made, and whether
both settings returned the same texts (they must: a sample depends on its seed, prompt and
index only). A warm-up pass compiles the programs before each timed pass.
"""

from __future__ import annotations

import concurrent.futures as futures
import time

from absl import flags

from mode_jax import cli


def main(argv=None):
  fv = flags.FlagValues()
  for name, default in (("clients", 8), ("requests", 4), ("max_tokens", 32)):
    flags.DEFINE_integer(name, default, "", flag_values=fv)
  flags.DEFINE_string("model", "gemma3_270m", "any mode_jax.serve.load name", flag_values=fv)
  args = cli.parse_argv(fv, argv)

  from benchmarks.sampling import ENGLISH
  from mode_jax import serve
  from mode_jax.serve.server import make_app, serve_in_thread

  model = serve.load(args.model, max_batch=64)
  words = ENGLISH.split()
  prompts = [" ".join(words[i:i + 12]) for i in range(args.clients * args.requests)]

  results = {}
  for batching in (True, False):
    app = make_app(model, args.model, batching=batching)
    with serve_in_thread(app) as url:
      client = serve.OpenAIClient(url, args.model)

      def one_client(c):
        out = []
        for r in range(args.requests):
          i = c * args.requests + r
          out += client.complete([prompts[i]], 1, max_tokens=args.max_tokens,
                                 temperature=1.0, top_p=0.95, seeds=[i])[0]
        return out

      def run():
        with futures.ThreadPoolExecutor(args.clients) as ex:
          return [s for part in ex.map(one_client, range(args.clients)) for s in part]
      run()                                           # compile
      calls = app.state.batcher.calls
      t0 = time.perf_counter()
      samples = run()
      dt = time.perf_counter() - t0
      results[batching] = dict(seconds=dt, tokens=sum(s.num_tokens for s in samples),
                               calls=app.state.batcher.calls - calls,
                               texts=[s.text for s in samples])
  print(f"{args.model}: {args.clients} clients x {args.requests} requests, one prompt each, "
        f"<= {args.max_tokens} new tokens, top-p 0.95")
  for batching, r in results.items():
    print(f"batching {'on ' if batching else 'off'}: {r['seconds']:.1f} s, "
          f"{r['tokens'] / r['seconds']:.1f} generated tokens/s, {r['calls']} model calls for "
          f"{args.clients * args.requests} requests")
  on, off = results[True], results[False]
  print(f"throughput x{(on['tokens'] / on['seconds']) / (off['tokens'] / off['seconds']):.2f} "
        f"with batching; same texts: {on['texts'] == off['texts']}")


if __name__ == "__main__":
  main()
