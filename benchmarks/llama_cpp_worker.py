"""llama.cpp side of benchmarks.text_generation, run by the llama-cpp-python of another
virtual environment (it does not install beside the project):

    PYTHON -m benchmarks.llama_cpp_worker --job=JOB.json   # prints one JSON line of results

Flags (parsed by hand: that environment has no absl):
  --job   the job file (below)

JOB: {"gguf", "prompts" (token ids, BOS included), "new_tokens", "threads", "modes": [
{"name", "temperature", "top_p"}], "repeats"}. Each prompt is generated alone (llama-cpp-
python's Llama decodes one sequence), exactly new_tokens tokens (EOS does not stop it);
tokens/s = all generated tokens / wall time, prefill included, median over repeats after a
warm-up. Also the greedy tokens of each prompt (agreement with the project's sampler).
Needs only the standard library and llama_cpp.
"""

import json

from benchmarks import worker_io


def _generate(m, prompt, n, temperature, top_p, seed):
  m.reset()
  m.set_seed(seed)
  out = []
  for tok in m.generate(prompt, temp=temperature, top_p=top_p, top_k=0, min_p=0.0,
                        repeat_penalty=1.0, reset=True):
    out.append(int(tok))
    if len(out) >= n:
      break
  return out


def main(path):
  import llama_cpp
  job = json.load(open(path))
  m = llama_cpp.Llama(model_path=job["gguf"], n_ctx=job["ctx"], n_threads=job["threads"],
                      n_threads_batch=job["threads"], n_batch=512, verbose=False, seed=0)
  res = {"llama_cpp_version": llama_cpp.__version__, "modes": {}}
  for mode in job["modes"]:
    def run(seed):
      return [_generate(m, p, job["new_tokens"], mode["temperature"], mode["top_p"], seed + i)
              for i, p in enumerate(job["prompts"])]
    median, outs = worker_io.timed(run, job["repeats"])
    n = sum(len(o) for o in outs)
    res["modes"][mode["name"]] = {"tokens_per_s": n / median, "median_s": median,
                                  "tokens": outs}
  print(json.dumps(res))


if __name__ == "__main__":
  worker_io.main(__doc__, main)
