"""The tiny arithmetic policy: SFT through the mode_jax trainer (a short run), its evaluation,
and a real OmegaPRM collection with the in-process JAX policy on the saved checkpoint."""

import json
import os

import pytest

from configs import omegaprm_arith, policy_arith
from prm_jax import collect
from prm_jax.policy import sft

# One worker: the module's tests share an expensive module-scoped fixture.
pytestmark = pytest.mark.xdist_group(name="policy_sft")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  wd = str(tmp_path_factory.mktemp("policy"))
  c = policy_arith.get_config()
  c.data.num_train, c.data.num_eval = 400, 20
  c.train.steps, c.train.batch_size, c.train.log_every, c.train.ckpt_every = 30, 8, 10, 30
  c.eval.num_problems, c.eval.samples, c.eval.max_new_tokens = 4, 2, 48
  logs = []
  res = sft.run(c, wd, log=logs.append)
  return wd, c, res, logs


def test_sft_trains_saves_and_evaluates(trained):
  wd, c, res, logs = trained
  assert os.path.exists(os.path.join(wd, "policy_model", "config.json"))
  rows = [json.loads(l) for l in open(os.path.join(wd, "train", "metrics.jsonl"))]
  losses = [r["loss"] for r in rows if "loss" in r]
  assert losses[-1] < losses[0]                         # it learns the format at least
  assert set(res) >= {"greedy_accuracy", "sampled_accuracy", "sampled_process_correct"}
  assert 0.0 <= res["sampled_accuracy"] <= 1.0 and res["problems"] == 4
  assert json.load(open(os.path.join(wd, "policy_eval.json")))["problems"] == 4
  # the task's prompt is the policy template filled with an env question
  row = sft.arith_rows(c.data, "validation")[0]
  assert row["inputs"].startswith("Question: Start with ") and row["inputs"].endswith("Answer:\n")


def test_collect_with_the_in_process_jax_policy(trained, tmp_path):
  wd, *_ = trained
  c = omegaprm_arith.get_config("jax")
  c.policy.checkpoint = os.path.join(wd, "policy_model")
  c.policy.max_new_tokens = 48
  c.questions.num = 3
  c.search.update(dict(search_limit=2, root_rollouts=4, k=2, filter_root=False))
  stats = collect.collect(c, str(tmp_path), log=lambda *_: None)
  assert stats["questions"] == 3 and stats["rollouts"] >= 3 * 4
  s = stats["sessions"][-1]
  assert s["policy_batches"] >= 1 and s["rollouts_per_s"] > 0 and s["tokens_per_s"] > 0
  # all questions' root rollouts went to the sampler in one batched call
  assert s["policy_batches"] < stats["policy_calls"]


def test_gsm8k_collection_config_runs_on_gsm8k_train_questions(trained, tmp_path):
  """configs/omegaprm_arith.py:gsm8k_cpu reads GSM8K train questions and grades with the GSM8K
  grader (here with the tiny arithmetic policy standing in for the Gemma GSM8K one)."""
  gsm8k = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
      __file__)))), "..", "shared", "data", "gsm8k", "train.jsonl")
  if not os.path.exists(gsm8k):
    pytest.skip(f"GSM8K not found at {gsm8k} (../shared/data/gsm8k)")
  wd, *_ = trained
  c = omegaprm_arith.get_config("gsm8k_cpu")
  assert (c.questions.num, c.questions.grader, c.policy.template) == (32, "gsm8k",
                                                                     sft.TEMPLATE)
  assert omegaprm_arith.get_config("gsm8k").questions.num == 300
  c.policy.checkpoint = os.path.join(wd, "policy_model")
  c.policy.max_new_tokens = 24
  c.questions.path, c.questions.num = gsm8k, 2
  c.search.update(dict(search_limit=1, root_rollouts=2, k=2, filter_root=False))
  stats = collect.collect(c, str(tmp_path), log=lambda *_: None)
  assert stats["questions"] == 2 and stats["rollouts"] >= 4
  q = [json.loads(l) for l in open(tmp_path / "questions.jsonl")]
  assert [x["question_id"] for x in q] == ["line-1", "line-2"]
  rows, errors = collect.load_questions(c.questions)
  assert not errors and rows[0]["question"].startswith("Natalia sold clips")
  assert rows[0]["answer"] == "72"                              # the "#### 72" line's value


def test_a_lora_policy_is_saved_with_its_adapter_folded_in(tmp_path):
  """An adapter policy (the Gemma variant's recipe, here on a tiny base) is saved as a plain
  checkpoint whose logits equal the base + LoRA model's; the gemma3 variant names Gemma's own
  tokenizer and BOS."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from mode_jax.model import Transformer, hf_io
  from mode_jax.train import bases
  from tests.prm.test_prm_train import _tiny_backbone
  cfg, base = _tiny_backbone(tmp_path / "base")
  c = policy_arith.get_config()
  c.checkpoint.hf_path = str(tmp_path / "base")
  c.adapter = {"method": "lora", "experts": 1, "rank": 4, "targets": ("q", "v", "up")}
  c.data.num_train, c.data.num_eval = 64, 8
  c.train.update(dict(steps=3, batch_size=4, lr=0.05, warmup_steps=0, log_every=1,
                      ckpt_every=3))
  c.eval.update(dict(num_problems=2, samples=1, max_new_tokens=8))
  wd = tmp_path / "policy"
  sft.run(c, str(wd), log=lambda *_: None)
  saved_cfg, saved = hf_io.load_hf_checkpoint(str(wd / "policy_model"))
  from mode_jax.adapters import load_adapter             # the run's trained adapter
  from mode_jax.adapters.params import combine
  adapter, acfg = load_adapter(str(wd / "train" / "adapter"))
  trained = combine(base, adapter)
  tok = jnp.asarray([[1, 40, 41, 42, 43, 10]])
  want = Transformer(cfg, acfg).apply({"params": trained}, tok)
  got = Transformer(saved_cfg).apply({"params": saved}, tok)
  np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
  assert not np.allclose(got, Transformer(cfg).apply({"params": base}, tok), atol=1e-3)
  g = bases.with_pretrained(policy_arith.get_config("gemma3"))
  assert g.vocab.kind == "gguf" and g.data.bos_id == 2 and g.adapter.method == "lora"


GSM8K = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "..", "shared", "data", "gsm8k")


def test_gsm8k_rows_drop_calculator_notes_and_keep_test_out_of_training():
  if not os.path.exists(os.path.join(GSM8K, "train.jsonl")):
    pytest.skip(f"GSM8K not found at {GSM8K} (../shared/data/gsm8k)")
  from configs import policy_gsm8k
  from prm_jax import graders
  d = policy_gsm8k.get_config().data
  d.gsm8k_dir = GSM8K
  text, gold = sft.gsm8k_solution("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72")
  assert text == "Natalia sold 48/2 = 24 clips.\nThe answer is 72." and gold == "72"
  assert graders.gsm8k_is_correct(text, gold)
  with pytest.raises(ValueError, match="no '#### <answer>'"):
    sft.gsm8k_solution("no final line")
  train, val, test = (sft.gsm8k_problems(d, s) for s in ("train", "validation", "test"))
  assert len(train) + len(val) == 7473 and 100 < len(val) < 200 and len(test) == 1319
  norm = lambda rows: {" ".join(r["question"].lower().split()) for r in rows}
  assert not norm(train) & norm(val) and not norm(train) & norm(test)
  assert not any("<<" in r["solution"] for r in train)
  # the grader reads the first "answer is": one reference ("... the final answer is 15
  # gallons * 8 pints / gallon = 120 pints") grades wrong against its own gold
  wrong = [r for r in train if not graders.gsm8k_is_correct(r["solution"], r["answer"])]
  assert len(wrong) == 1 and "the final answer is 15 gallons" in wrong[0]["solution"]
  from mode_jax.data.vocab import make_vocab
  import seqio
  names, evals, _ = sft.build_gsm8k_data(d, make_vocab("bytes"), "")
  assert names == evals == [sft.GSM8K_TASK]
  ex = next(iter(seqio.get_mixture_or_task(sft.GSM8K_TASK).get_dataset(
      None, split="validation", shuffle=False).as_numpy_iterator()))
  assert bytes(ex["inputs_pretokenized"]).decode().startswith("Question: ")


def test_gsm8k_evaluation_grades_greedy_and_samples():
  """evaluate_gsm8k on a scripted model: right / wrong answers graded by the GSM8K grader, the
  template's stop string passed to the model."""
  if not os.path.exists(os.path.join(GSM8K, "test.jsonl")):
    pytest.skip(f"GSM8K not found at {GSM8K} (../shared/data/gsm8k)")
  from configs import policy_gsm8k
  from mode_jax.serve.api import Sample
  d = policy_gsm8k.get_config().data
  d.gsm8k_dir = GSM8K
  gold = [p["answer"] for p in sft.gsm8k_problems(d, "test")[:4]]

  class Scripted:
    def complete(self, prompts, n, *, seeds=None, stop=(), **kw):
      assert stop == ("\nQuestion:",)
      return [[Sample(f"So.\nThe answer is {g if (i + j) % 2 == 0 else 'x'}.", 5)
               for j in range(n)] for i, g in enumerate(gold)]
  res = sft.evaluate_gsm8k(Scripted(), d, num=4, samples=2, seed=0)
  assert res["greedy_accuracy"] == 0.5 and res["sampled_accuracy"] == 0.5
  assert res["pass_at_n"] == 1.0 and res["problems"] == 4
