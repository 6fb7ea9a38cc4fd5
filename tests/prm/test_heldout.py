"""The pipeline's held-out problems are held out by construction: disjoint from the policy's SFT
problems, the collection questions (every PRM's and the ORM's training data) and each other.
Before `pipeline.heldout_problems`, the pre-registered study's 500 problems (eval_seed 13) were
drawn by seed alone from the arithmetic generator: 150 were among the policy's SFT problems, 2
among the collection questions, 3 repeated (counted here on that old draw)."""

import os

import pytest

from configs import prm_arith
from prm_jax import pipeline
from prm_jax.envs import arithmetic as A

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _config_path():
  pipeline._CONFIG_PATH[0] = os.path.join(ROOT, "configs", "prm_arith.py")


@pytest.mark.parametrize("variant", ["", "study"])
def test_heldout_problems_are_disjoint_from_every_training_split(variant):
  c = prm_arith.get_config(variant)
  splits = pipeline.training_questions(c)
  assert set(splits) == {"policy_sft_train", "policy_sft_validation", "collection"}
  assert len(splits["policy_sft_train"]) > 10_000 and len(splits["collection"]) > 200
  probs = pipeline.heldout_problems(c)
  keys = [pipeline.normalize_question(p.question) for p in probs]
  assert len(probs) == c.pipeline.eval_questions
  assert len(set(keys)) == len(keys)
  for name, qs in splits.items():
    assert not set(keys) & qs, name
  assert [p.id for p in pipeline.heldout_problems(c)] == [p.id for p in probs]   # deterministic
  for p in probs:           # real problems of the generator, with their checker's answer
    assert A.is_correct(p.solution, p.answer)


def test_the_old_seed_only_draw_leaked_and_is_what_the_fix_replaces():
  c = prm_arith.get_config("study")
  splits = pipeline.training_questions(c)
  arith = A.ArithmeticConfig(**dict(pipeline.collect_config(c, "omegaprm", "").questions.arith))
  old = [pipeline.normalize_question(p.question)
         for p in A.make_problems(500, arith, seed=13, prefix="heldout")]
  assert sum(q in splits["policy_sft_train"] for q in old) == 150
  assert sum(q in splits["collection"] for q in old) == 2
  assert len(old) - len(set(old)) == 3


def test_heldout_problems_refuse_when_the_generator_runs_out():
  c = prm_arith.get_config("study")
  with pytest.raises(ValueError, match="pipeline.eval_questions=500"):
    pipeline.heldout_problems(c, max_draws_per_problem=1)


def test_normalized_question_ignores_case_and_spacing():
  assert pipeline.normalize_question(" Start  with 5.\nAdd 3. ") == \
      pipeline.normalize_question("start with 5. add 3.")
