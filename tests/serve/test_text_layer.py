"""The text layer on a tiny byte-level model: per-request determinism in-process (batch 1 vs
32, chunking, prefix sharing) and over HTTP (concurrency 1 vs 8, batching on and off), real
log-probs (against a teacher-forced forward) and usage counts from the server, echo scoring,
chat, and loading checkpoints with their own tokenizer (never a silent byte default)."""

import concurrent.futures as futures
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import requests

from mode_jax import serve
from mode_jax.adapters import AdapterConfig, export
from mode_jax.data.vocab import make_vocab, save_vocab_spec
from mode_jax.model import Transformer, hf_io, presets
from mode_jax.data.vocab import VocabularyMismatch
from mode_jax.serve.server import make_app, serve_in_thread

PROMPTS = [f"Question: {a}+{b}?\nAnswer:\n" for a in range(4) for b in range(8)]   # 32
SAMPLING = dict(max_tokens=10, temperature=1.0, top_p=0.9)


@pytest.fixture(scope="module")
def tiny():
  cfg = presets.get("tiny")
  params = Transformer(cfg).init(jax.random.key(0), jnp.ones((1, 8), jnp.int32))["params"]
  return cfg, params


@pytest.fixture(scope="module")
def model(tiny):
  return serve.LocalModel(*tiny, make_vocab("bytes"), name="tiny")


def _texts(out):
  return [[s.text for s in row] for row in out]


def test_a_sample_depends_on_seed_prompt_and_index_only(model):
  seeds = list(range(100, 132))
  big = model.complete(PROMPTS, 2, seeds=seeds, **SAMPLING)
  one = [model.complete([p], 2, seeds=[s], **SAMPLING)[0] for p, s in
         list(zip(PROMPTS, seeds))[::7]]
  assert _texts(one) == _texts(big[::7])                              # batch 1 vs 32
  assert [[s.num_tokens for s in r] for r in one] == [[s.num_tokens for s in r]
                                                      for r in big[::7]]
  rev = model.complete(PROMPTS[::-1], 2, seeds=seeds[::-1], **SAMPLING)
  assert _texts(rev) == _texts(big)[::-1]                            # position
  model.max_batch, keep = 6, model.max_batch
  try:
    assert _texts(model.complete(PROMPTS, 2, seeds=seeds, **SAMPLING)) == _texts(big)
  finally:
    model.max_batch = keep
  assert _texts(model.complete(PROMPTS, 2, seeds=[s + 1 for s in seeds], **SAMPLING)) != \
      _texts(big)
  greedy = model.complete(PROMPTS[:3], 2, temperature=0.0, max_tokens=8)
  assert all(r[0].text == r[1].text for r in greedy)


def test_prefix_sharing_prefills_a_prompt_once_and_changes_no_sample(model):
  """n samples of a prompt (and identical prompts) are prefilled once, their KV cache
  broadcast; the samples equal those prefilled row by row."""
  prompts = PROMPTS[:3] + PROMPTS[:1]
  sampler = model.sampler
  enc = [model.encode(p) for p in prompts]
  rows = [e for e in enc for _ in range(4)]
  ids = list(range(len(rows)))
  before = sampler.prefill_tokens
  shared = sampler.generate(rows, max_new_tokens=10, temperature=1.0, rng=5, row_ids=ids)
  prefilled = sampler.prefill_tokens - before
  plain = sampler.generate(rows, max_new_tokens=10, temperature=1.0, rng=5, row_ids=ids,
                           share_prefix=False)
  assert prefilled == sum(len(e) for e in enc[:3])          # 3 distinct prompts, once each
  assert sampler.prefill_tokens - before - prefilled == sum(len(r) for r in rows)
  np.testing.assert_array_equal(shared.tokens, plain.tokens)
  np.testing.assert_allclose(shared.logprobs, plain.logprobs, atol=1e-5)


def test_logprobs_are_the_models_and_score_agrees(model, tiny):
  cfg, params = tiny
  (row,) = model.complete([PROMPTS[0]], 2, seeds=[3], logprobs=True, **SAMPLING)
  ids = model.encode(PROMPTS[0])
  for s in row:
    gen = [int(i) for i in model.vocab.encode(s.text)]
    assert len(s.token_logprobs) == s.num_tokens and "".join(s.tokens) == s.text
    if len(gen) == s.num_tokens:              # the text re-encodes to the sampled tokens
      logits = Transformer(cfg).apply({"params": params}, jnp.asarray([ids + gen]))
      lp = jax.nn.log_softmax(logits[0].astype(jnp.float32), -1)
      want = [float(lp[len(ids) - 1 + k, t]) for k, t in enumerate(gen)]
      np.testing.assert_allclose(s.token_logprobs, want, atol=1e-4)
      assert s.logprob == pytest.approx(sum(want), abs=1e-3)
      assert model.score([PROMPTS[0]], [s.text])[0] == pytest.approx(sum(want), abs=1e-3)


def test_http_equals_in_process_at_any_concurrency_with_real_logprobs_and_usage(model):
  seeds = list(range(7, 39))
  want = model.complete(PROMPTS, 2, seeds=seeds, **SAMPLING)
  app = make_app(model, "tiny")
  with serve_in_thread(app) as url:
    got = {c: serve.OpenAIClient(url, "tiny", max_concurrency=c).complete(
        PROMPTS, 2, seeds=seeds, **SAMPLING) for c in (1, 8)}
    batcher = app.state.batcher
    calls_before = batcher.calls
    # concurrent clients are joined into fewer model calls
    with futures.ThreadPoolExecutor(8) as ex:
      list(ex.map(lambda i: serve.OpenAIClient(url, "tiny").complete(
          PROMPTS[i:i + 4], 1, seeds=[0, 1, 2, 3], **SAMPLING), range(0, 32, 4)))
    joined = batcher.calls - calls_before
    r = requests.post(url + "/v1/completions", json={
        "prompt": PROMPTS[0], "n": 2, "max_tokens": 10, "temperature": 1.0, "top_p": 0.9,
        "seed": seeds[0], "logprobs": 0}).json()
    echo = serve.OpenAIClient(url, "tiny").score(PROMPTS[:3], ["4", " 12", "x"])
    bad = requests.post(url + "/v1/completions", json={"prompt": "x", "max_tokens": 0})
    chat = requests.post(url + "/v1/chat/completions",
                         json={"messages": [{"role": "user", "content": "hi"}]})
  for c in (1, 8):
    assert got[c] == want                     # texts, token counts and finished flags
    for gr, wr in zip(got[c], want):
      for g, w in zip(gr, wr):
        assert g.logprob == pytest.approx(w.logprob, abs=1e-4)
  assert joined < 8
  lp = r["choices"][0]["logprobs"]
  assert lp["token_logprobs"] == pytest.approx(list(want[0][0].token_logprobs or
                                                    model.complete([PROMPTS[0]], 2,
                                                                   seeds=[seeds[0]],
                                                                   logprobs=True,
                                                                   **SAMPLING)[0][0]
                                                    .token_logprobs), abs=1e-4)
  assert "".join(lp["tokens"]) == r["choices"][0]["text"]
  assert lp["text_offset"][0] == 0
  assert r["usage"]["prompt_tokens"] == len(model.encode(PROMPTS[0]))
  assert r["usage"]["completion_tokens"] == sum(s.num_tokens for s in want[0])
  # echo scoring: the byte vocabulary tokenises prompt + continuation as the two apart
  np.testing.assert_allclose(echo, model.score(PROMPTS[:3], ["4", " 12", "x"]), atol=1e-4)
  assert bad.status_code == 400 and "echo" in bad.text
  assert chat.status_code == 400 and "chat template" in chat.text


def test_load_reads_the_checkpoints_own_tokenizer_and_refuses_a_wrong_one(tiny, tmp_path):
  cfg, params = tiny
  d = str(tmp_path / "ckpt")
  hf_io.save_hf_checkpoint(d, cfg, params)
  with pytest.raises(ValueError, match="names no tokenizer"):
    serve.load(d)
  save_vocab_spec(d, "bytes")
  m = serve.load(d)
  assert m.bos_id is None and m.complete(["ab"], 1, temperature=0.0, max_tokens=4)
  big = cfg.replace(vocab_size=4096)
  with pytest.raises(VocabularyMismatch, match="259 ids but the checkpoint's embedding has "
                     "4,096 rows"):
    serve.LocalModel(big, None, make_vocab("bytes"), name="big")
  # a trained workdir: the base beside it + the adapter with its tokenizer and BOS
  wd = tmp_path / "run"
  acfg = AdapterConfig("lora", rank=2, targets=("q", "v"))
  full = Transformer(cfg, adapter=acfg).init(jax.random.key(1), jnp.ones((1, 8), jnp.int32))
  hf_io.save_hf_checkpoint(str(wd / "base_model"), cfg, params)
  export.save_adapter(str(wd / "adapter"), full["params"], acfg,
                      metadata={"base": "trained in workdir", "vocab": {"kind": "bytes",
                                                                        "path": ""},
                                "bos_id": 1})
  w = serve.load(str(wd))
  assert w.adapter == acfg and w.bos_id == 1 and w.encode("a") == [1, 100]
  with pytest.raises(FileNotFoundError, match="not a pretrained name"):
    serve.load(str(tmp_path / "nothing"))
  rec = json.load(open(os.path.join(d, "mode_jax_tokenizer.json")))
  assert rec == {"kind": "bytes", "path": "", "bos_id": None}


def test_a_stream_of_varied_prompt_lengths_compiles_a_bounded_number_of_programs(model):
  """40 calls with prompts of 3 to 300 bytes compile at most one program per prompt bucket
  (`sampling.bucket`: 16, 32, 64, 96, 128, 192, 256, 384), not one per length."""
  from mode_jax.model import sampling
  rs = np.random.RandomState(0)
  lengths = rs.randint(3, 300, 40)
  model.complete(["warm"], 1, max_tokens=4, temperature=1.0, seeds=[0])
  before = sampling._generate._cache_size()
  for i, n in enumerate(lengths):
    model.complete(["x" * int(n)], 1, max_tokens=4, temperature=1.0, seeds=[i])
  buckets = {sampling.bucket(int(n) + 0, 16) for n in lengths}
  assert sampling._generate._cache_size() - before <= len(buckets) <= 8
