"""Policies over the text layer: `TemplatePolicy` on the in-process model and on the project's
server gives the same rollouts, seeded per request; an unfinished rollout is not graded."""

import jax
import jax.numpy as jnp
import pytest

from mode_jax.data.vocab import make_vocab
from mode_jax.model import Transformer, presets
from mode_jax.serve import LocalModel, OpenAIClient
from mode_jax.serve.api import Sample, Sampling
from mode_jax.serve.server import make_app, serve_in_thread
from prm_jax.policy.base import TemplatePolicy, template_stops

SAMPLING = Sampling(max_tokens=12, temperature=1.0)


@pytest.fixture(scope="module")
def model():
  cfg = presets.get("tiny")
  params = Transformer(cfg).init(jax.random.key(0), jnp.ones((1, 8), jnp.int32))["params"]
  return LocalModel(cfg, params, make_vocab("bytes"), name="tiny")


def test_template_policy_is_the_models_completions_of_templated_prompts(model):
  prompts = ["Question: 1+1?\nAnswer:\n", "Question: 2+2?\nAnswer:\n4 + "]
  want = model.complete(prompts, 3, seeds=7, **SAMPLING.kwargs())
  pol = TemplatePolicy(model, sampling=SAMPLING)
  assert pol.rollout([("1+1?", ""), ("2+2?", "4 + ")], 3, seed=7) == want
  # per-request seeds: a request's rollouts do not depend on its neighbours or position
  both = pol.rollout([("1+1?", ""), ("2+2?", "4 + ")], 3, seed=[41, 42])
  assert pol.rollout([("2+2?", "4 + ")], 3, seed=[42]) == [both[1]]
  assert pol.rollout([("2+2?", "4 + "), ("1+1?", "")], 3, seed=[42, 41]) == both[::-1]
  with pytest.raises(ValueError, match="1 per-request seeds for 2 requests"):
    pol.rollout([("1+1?", ""), ("2+2?", "")], 3, seed=[41])
  with pytest.raises(ValueError, match="template must contain"):
    TemplatePolicy(model, "no placeholder")


def test_http_policy_matches_in_process_and_finish_reason_reaches_the_search(model):
  """The project's server reports finish_reason truthfully (the 12-token limit cuts rows that
  did not stop), the client reads it back, and the search does not grade an unfinished
  rollout as wrong."""
  from prm_jax.omegaprm.tree import Tree
  reqs = [("1+1?", ""), ("3*3?", "9")]
  direct = TemplatePolicy(model, sampling=SAMPLING).rollout(reqs, 4, seed=3)
  with serve_in_thread(make_app(model, "tiny")) as url:
    via = TemplatePolicy(OpenAIClient(url, "tiny"), sampling=SAMPLING).rollout(reqs, 4, seed=3)
  assert via == direct                                   # text, token count, finished
  flags = [c.finished for row in direct for c in row]
  assert not all(flags)                     # 12 tokens without a stop: some are cut
  assert all(c.num_tokens == 12 for row in direct for c in row if not c.finished)
  assert template_stops("Question: {question}\nAnswer:\n") == ("\nQuestion:",)
  assert template_stops("{question}\n") == ()
  assert template_stops("Question: 1+1?\nAnswer:\n2\n\nQuestion: {question}\nAnswer:\n") == (
      "\nQuestion:",)                                    # few-shot: the last lead-in only
  tree = Tree("q", "7", lambda text, gold: text.endswith("7"), lambda t: [t])
  state = tree.root
  graded = tree.estimate(state, [Sample("so 7", 3), Sample("and then so", 12, finished=False)])
  assert len(graded) == 1 and state.rollouts == 1 and state.mc == 1.0


def test_gsm8k_grades_the_first_final_answer_of_a_runaway_generation():
  from prm_jax.graders import gsm8k_is_correct
  runaway = ("She has 3 + 15 = 18 apples. The answer is 18.\n\nQuestion: Tom has 2 cats and "
             "gets 3 more. How many?\nAnswer: 2 + 3 = 5. The answer is 5.")
  assert gsm8k_is_correct(runaway, "18") and not gsm8k_is_correct(runaway, "5")
  assert gsm8k_is_correct("3 + 15 = 18\n#### 18\n\nQuestion: ...\n#### 5", "18")
