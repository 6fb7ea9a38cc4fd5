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
