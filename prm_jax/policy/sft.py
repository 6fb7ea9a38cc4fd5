"""A tiny trainable policy for the arithmetic env:

    python -m prm_jax.policy.sft --config=configs/policy_arith.py --workdir=runs/policy

Trains the `tiny` backbone from scratch (full fine-tuning through the `mode_jax` trainer: same
checkpoints, metrics and resume) on generated problems -> step-by-step solutions, saves it as
an HF-format checkpoint in `<workdir>/policy_model`, and measures on held-out problems the
answer accuracy of greedy decoding and of sampling at the collection temperature, and how
often a sampled solution is right at every step (exact checker). The config aims the policy
at 30-80% sampled accuracy so that OmegaPRM has real errors to find.

Its data kind is `build_arith_data` (configs/policy_arith.py names it as
`data.kind = "prm_jax.policy.sft:build_arith_data"`; seqio task "arith_solutions").
"""

from __future__ import annotations

import json
import os
import re
import zlib

import numpy as np

from mode_jax import cli
from mode_jax.data import metrics, tasks
from mode_jax import serve
from mode_jax.atomic_io import jsonl_records, write_json_atomic
from mode_jax.data.vocab import save_vocab_spec, vocab_spec
from mode_jax.adapters.merge import merge
from mode_jax.model import hf_io
from mode_jax.serve.api import Sampling
from mode_jax.train import bases
from mode_jax.train import run as run_lib
from mode_jax.train import run_data
from prm_jax import graders
from prm_jax.envs import arithmetic
from prm_jax.policy.base import template_stops
from prm_jax.questions import normalize_question

TASK = "arith_solutions"
# The problems the tiny policy is trained on (configs/policy_arith.py; the ":jax" variant of
# configs/omegaprm_arith.py collects on the same distribution).
POLICY_ARITH = dict(min_ops=2, max_ops=4, max_start=20, max_operand=9, max_factor=3,
                    max_value=60, allow_negative=False, ops=("+", "-"))
TEMPLATE = "Question: {question}\nAnswer:\n"


def split_size_seed(dcfg, split: str) -> tuple[int, int]:
  """(problems, generator seed) of the SFT data's `split` ("train" or "validation")."""
  return ((dcfg.num_train, dcfg.seed) if split == "train"
          else (dcfg.num_eval, dcfg.seed + 1_000_003))


def arith_rows(dcfg, split: str) -> list[dict]:
  """SFT rows of `split`: the templated question -> the reference solution, answer as reference."""
  cfg = arithmetic.ArithmeticConfig(**dict(dcfg.arith))
  n, seed = split_size_seed(dcfg, split)
  probs = arithmetic.make_problems(n, cfg, seed=seed, prefix=f"arith-{split}")
  return [{"inputs": dcfg.template.format(question=p.question), "targets": p.solution,
           "references": p.answer} for p in probs]


def build_arith_data(dcfg, vocab, workdir: str):
  """The data kind of the policy (see `mode_jax.resolve`): generated problems -> solutions."""
  del workdir
  rows = {s: arith_rows(dcfg, s) for s in ("train", "validation")}
  tasks.register_rows(TASK, rows, vocab, 0, [metrics.math_answer_metrics])
  return [TASK], [TASK], tasks.TaskIdTable({TASK: 0})


GSM8K_TASK = "gsm8k_solutions"
_CALC = re.compile(r"<<[^>]*>>")


def gsm8k_solution(answer: str, where: str = "answer") -> tuple[str, str]:
  """(solution text, gold answer) of a GSM8K answer field: the calculator annotations
  (<<48/2=24>>) dropped and the final "#### 72" written "The answer is 72." (what the project's
  GSM8K grader and the arithmetic env's solutions read)."""
  body, sep, gold = str(answer).rpartition("####")
  if not sep or not gold.strip():
    raise ValueError(f"{where}: no '#### <answer>' line in {str(answer)[-80:]!r}")
  gold = gold.strip()
  return f"{_CALC.sub('', body).rstrip()}\nThe answer is {gold}.", gold


def _gsm8k_file(dcfg, split: str) -> list[dict]:
  path = os.path.join(dcfg.gsm8k_dir, "test.jsonl" if split == "test" else "train.jsonl")
  if not os.path.exists(path):
    raise FileNotFoundError(f"data.gsm8k_dir: {path} does not exist (GSM8K's train.jsonl and "
                            "test.jsonl, e.g. ../shared/data/gsm8k)")
  out = []
  for n, r in jsonl_records(path):
    for key in ("question", "answer"):
      if not isinstance(r.get(key), str):
        raise ValueError(f"{path}:{n}: field {key!r} missing or not a string")
    text, gold = gsm8k_solution(r["answer"], f"{path}:{n}: field 'answer'")
    out.append({"question": r["question"], "solution": text, "answer": gold})
  return out


def gsm8k_is_validation(question: str) -> bool:
  """The SFT validation slice of GSM8K train: 2% of the questions, by a hash of the text."""
  return zlib.crc32(normalize_question(question).encode()) % 50 == 0


def gsm8k_problems(dcfg, split: str) -> list[dict]:
  """{"question", "solution", "answer"} of GSM8K `split`: "train" (train.jsonl without the
  validation slice), "validation" (that slice) or "test" (test.jsonl, never trained on)."""
  rows = _gsm8k_file(dcfg, split)
  if split == "test":
    return rows
  return [r for r in rows if gsm8k_is_validation(r["question"]) == (split == "validation")]


def build_gsm8k_data(dcfg, vocab, workdir: str):
  """The data kind of a GSM8K policy: train questions -> their reference solutions."""
  del workdir
  rows = {s: [{"inputs": dcfg.template.format(question=p["question"]),
               "targets": p["solution"], "references": p["answer"]}
              for p in gsm8k_problems(dcfg, s)] for s in ("train", "validation")}
  tasks.register_rows(GSM8K_TASK, rows, vocab, 0, [metrics.math_answer_metrics])
  return [GSM8K_TASK], [GSM8K_TASK], tasks.TaskIdTable({GSM8K_TASK: 0})


def evaluate_gsm8k(model, dcfg, *, num: int, samples: int, seed: int,
                   sampling: Sampling = Sampling(max_tokens=320)) -> dict:
  """Greedy and sampled answer accuracy (the project's GSM8K grader) on the first `num`
  problems of GSM8K test."""
  probs = gsm8k_problems(dcfg, "test")[:num]
  prompts = [dcfg.template.format(question=p["question"]) for p in probs]
  stop = template_stops(dcfg.template)
  greedy = model.complete(prompts, 1, seeds=seed,
                          **sampling.replace(temperature=0.0, stop=stop).kwargs())
  g = [graders.gsm8k_is_correct(c[0].text, p["answer"]) for c, p in zip(greedy, probs)]
  out = {"set": "gsm8k test", "problems": len(probs), "greedy_accuracy": float(np.mean(g)),
         "greedy_finished": float(np.mean([c[0].finished for c in greedy])),
         "example": {"question": probs[0]["question"], "greedy": greedy[0][0].text}}
  if samples:
    sampled = model.complete(prompts, samples, seeds=seed + 1,
                             **sampling.replace(stop=stop).kwargs())
    s = [[graders.gsm8k_is_correct(x.text, p["answer"]) for x in c]
         for c, p in zip(sampled, probs)]
    out.update(samples_per_problem=samples, sampled_accuracy=float(np.mean(s)),
               pass_at_n=float(np.mean([any(r) for r in s])))
  return out


def evaluate_policy(model, dcfg, *, num: int, samples: int, seed: int,
                    sampling: Sampling = Sampling(max_tokens=96)) -> dict:
  """Answer accuracy (greedy, sampled) and fully-correct-process rate on held-out problems,
  sampling the `mode_jax.serve.TextModel` `model` with `sampling` (greedy: temperature 0)."""
  cfg = arithmetic.ArithmeticConfig(**dict(dcfg.arith))
  probs = arithmetic.make_problems(num, cfg, seed=split_size_seed(dcfg, "validation")[1],
                                   prefix="arith-validation")
  prompts = [dcfg.template.format(question=p.question) for p in probs]
  greedy = model.complete(prompts, 1, seeds=seed, **sampling.replace(temperature=0.0).kwargs())
  sampled = model.complete(prompts, samples, seeds=seed + 1, **sampling.kwargs())
  g = [arithmetic.is_correct(c[0].text, p.answer) for c, p in zip(greedy, probs)]
  s = [[arithmetic.is_correct(x.text, p.answer) for x in c] for c, p in zip(sampled, probs)]
  checks = [[arithmetic.check(p, x.text) for x in c] for c, p in zip(sampled, probs)]
  proc = [[k.first_error is None and k.complete for k in row] for row in checks]
  solved = np.array(s).mean(axis=1)
  return {"problems": num, "samples_per_problem": samples,
          "greedy_accuracy": float(np.mean(g)), "sampled_accuracy": float(np.mean(s)),
          "sampled_process_correct": float(np.mean(proc)),
          "problems_with_0_of_n_correct": float(np.mean(solved == 0)),
          "problems_with_n_of_n_correct": float(np.mean(solved == 1)),
          "example": {"question": probs[0].question, "sample": sampled[0][0].text}}


def run(config, workdir: str, log=print) -> dict:
  """Trains the policy (once per workdir: `<workdir>/policy_model`), then measures it on
  `config.eval.num_problems` new problems (`evaluate_policy`); writes policy_eval.json.
  `checkpoint.pretrained` (e.g. gemma3_270m) starts from that model with its tokenizer and BOS;
  a LoRA (or task-routed) adapter is folded into the saved weights, so `policy_model` is a plain
  checkpoint every loader and the PRM trainer read as a backbone."""
  config = bases.with_pretrained(config)
  model_dir = os.path.join(workdir, "policy_model")
  if not os.path.exists(os.path.join(model_dir, "config.json")):
    out = run_lib.run_training(config, os.path.join(workdir, "train"), log=log)
    params = out.params()
    if out.acfg is not None:
      params = merge(params, out.acfg, task_id=0 if out.acfg.routed else None)
    hf_io.save_hf_checkpoint(model_dir, out.model_cfg, params)
    log(f"policy saved to {model_dir} ({out.train_seconds:.0f} s of training)")
  if vocab_spec(model_dir) is None:       # the tokenizer it was trained with, for every loader
    save_vocab_spec(model_dir, config.vocab.kind, config.vocab.path or "",
                    run_data.bos_id(config.data))
  e = config.eval
  model = serve.load(model_dir, max_batch=e.max_batch)
  evaluate = evaluate_gsm8k if config.data.kind.endswith(":build_gsm8k_data") \
      else evaluate_policy
  res = evaluate(model, config.data, num=e.num_problems, samples=e.samples, seed=config.seed,
                 sampling=Sampling(max_tokens=e.max_new_tokens, temperature=e.temperature))
  write_json_atomic(os.path.join(workdir, "policy_eval.json"), res)
  log(json.dumps(res))
  return res


if __name__ == "__main__":
  cli.config_main(run, "configs/policy_arith.py", "runs/policy")
