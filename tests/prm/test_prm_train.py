"""PRM training through `python -m mode_jax.main` (full fine-tuning) and in-process with LoRA,
save / load / score, and the end-to-end pipeline on a simulated backend."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import omegaprm_arith, prm_arith
from mode_jax.model import Transformer, hf_io, presets
from prm_jax import collect
from prm_jax.envs import arithmetic as A
from prm_jax.policy.simulated import SimulatedBackend, SimulatedPolicy
from prm_jax.policy.sft import POLICY_ARITH
from prm_jax.prm.train import load_prm, prm_train, scorer_from_dir
from tests.helpers import missing_install

# One worker: the module's tests share an expensive module-scoped fixture.
pytestmark = pytest.mark.xdist_group(name="prm_train")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
  wd = tmp_path_factory.mktemp("labels")
  c = omegaprm_arith.get_config()
  c.questions.arith = dict(POLICY_ARITH, min_ops=3, max_ops=4)
  c.questions.num = 16
  c.policy.p_error, c.policy.p_recover = 0.15, 0.05
  c.search.search_limit = 10
  c.log_every = 1000
  collect.collect(c, str(wd), log=lambda *_: None)
  return str(wd / "records.jsonl")


def _tiny_backbone(path, **overrides):
  """(cfg, params) of a random tiny backbone (`overrides` on the test size), saved as an HF
  checkpoint at `path`."""
  cfg = presets.get("tiny", **dict(dict(embed_dim=64, num_layers=2, num_heads=2, num_kv_heads=1,
                                        head_dim=32, mlp_dim=128), **overrides))
  base = Transformer(cfg).init(jax.random.key(1), jnp.ones((1, 8), jnp.int32))["params"]
  hf_io.save_hf_checkpoint(str(path), cfg, base)
  return cfg, base


def _small(config, records, steps=4):
  config.checkpoint.hf_path = ""
  config.prm.records = (records,)
  config.prm.max_len = 128
  config.train.update(dict(steps=steps, batch_size=4, log_every=2, eval_every=2, ckpt_every=2))
  return config


def test_prm_through_mode_jax_main_and_scoring(records, tmp_path):
  wd = tmp_path / "prm"
  args = [sys.executable, "-m", "mode_jax.main", f"--config={ROOT}/configs/prm_arith.py",
          f"--workdir={wd}", "--config.checkpoint.hf_path=", f"--config.prm.records=('{records}',)",
          "--config.prm.max_len=128", "--config.train.steps=4", "--config.train.batch_size=4",
          "--config.train.log_every=2", "--config.train.eval_every=2",
          "--config.train.ckpt_every=2"]
  p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
  assert p.returncode == 0, p.stderr[-3000:]
  summary = json.load(open(wd / "prm_train.json"))
  assert summary["objective"] == "soft" and summary["train_labels"] > 0
  assert "eval_loss" in summary["dev"]
  rows = [json.loads(l) for l in open(wd / "train" / "metrics.jsonl")]
  assert any("labelled_steps" in r for r in rows) and any("eval_loss" in r for r in rows)
  cfg, params, acfg, meta = load_prm(str(wd / "prm_model"))
  assert acfg is None and meta["objective"] == "soft" and "adapter" in params
  scorer = scorer_from_dir(str(wd / "prm_model"))
  out = scorer.score([("Start with 3. Add 4. What is the result?", ["3 + 4 = 7\n", "The answer is 7."]),
                      ("q", ["a\n"])])
  assert [len(x) for x in out] == [2, 1] and all(((0 < x) & (x < 1)).all() for x in out)
  # ProcessBench-style evaluation of the saved PRM on a local JSONL
  from prm_jax import evaluate
  pb = tmp_path / "pb.jsonl"
  pb.write_text("\n".join(json.dumps({"problem": f"Start with {i}. Add 1. What is the result?",
                                      "steps": [f"{i} + 1 = {i + 1 + (i % 2)}",
                                                f"The answer is {i + 1}."],
                                      "label": 0 if i % 2 else -1}) for i in range(6)) + "\n")
  pb2 = tmp_path / "math.jsonl"
  pb2.write_text(pb.read_text())
  res = evaluate.main([f"--prm={wd / 'prm_model'}", f"--data={pb},{pb2}"])
  assert res["protocol"] == "official" and set(res["subsets"]) == {"pb", "math"}
  assert res["average_f1"] == pytest.approx(res["subsets"]["pb"]["f1"])   # identical subsets
  res = evaluate.main([f"--prm={wd / 'prm_model'}", f"--data={pb}", "--protocol=dev_tuned"])
  r = res["subsets"]["pb"]
  assert r["dev"] == 3 and r["test"] == 3 and 0.0 <= r["f1"] <= 1.0
  both = evaluate.main([f"--prm={wd / 'prm_model'}", f"--data={pb}", "--protocol=both"])
  assert both["dev_tuned"]["subsets"]["pb"] == r
  assert both["official"]["subsets"]["pb"] == evaluate.main(
      [f"--prm={wd / 'prm_model'}", f"--data={pb}"])["subsets"]["pb"]
  # an item longer than the model's window is scored, not an error: later steps in windows of
  # the last max_seq_len tokens, equal to scoring that window directly
  long_steps = [f"{i} + 1 = {i + 1}\n" for i in range(40)]
  short = dataclasses.replace(scorer.cfg, max_seq_len=128)
  small = type(scorer)(short, scorer.params, scorer.vocab, template=scorer.template)
  (probs,) = small.score([("Start with 0.", long_steps)])
  assert probs.shape == (40,) and ((0 < probs) & (probs < 1)).all()
  ids, ends = small.encode("Start with 0.", long_steps)
  assert ends[-1] >= 128
  window = ids[ends[-1] + 1 - 128:ends[-1] + 1]
  direct = small._apply(small.params, np.asarray([window], np.int32),
                        np.ones((1, 128), np.int32), np.arange(128, dtype=np.int32)[None], None)
  assert probs[-1] == pytest.approx(float(1 / (1 + np.exp(-np.asarray(direct)[0, -1]))),
                                    abs=1e-5)
  # padded, length-sorted batches (rows of 16-token multiples) score as each item alone,
  # unpadded, does; the padding's shapes: multiples of 16, capped at max_len
  items = [(f"Start with {i}.", [f"{i} + {j} = {i + j}\n" for j in range(1 + i % 5)])
           for i in range(12)]
  for (q, st), p in zip(items, scorer.score(items)):
    ids, ends = scorer.encode(q, st)
    z = np.asarray(scorer._apply(scorer.params, np.asarray([ids], np.int32),
                                 np.ones((1, len(ids)), np.int32),
                                 np.arange(len(ids), dtype=np.int32)[None], None))[0]
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-z[ends])), atol=1e-5)
  from mode_jax.model.padding import padded_batches
  seqs = [[1] * n for n in (3, 17, 40, 65, 90)]
  assert [t.shape[1] for _, t, _, _ in padded_batches(seqs, 1, 92, length_multiple=16)] == [
      16, 32, 48, 80, 92]
  assert [t.shape[1] for _, t, _, _ in padded_batches(seqs, 1, 128)] == [32, 32, 64, 128, 128]
  # resuming the finished run trains nothing more and keeps the saved PRM loadable
  p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
  assert p.returncode == 0 and "resumed from" in p.stdout + p.stderr


def test_prm_with_lora_trains_adapters_and_head_only(records, tmp_path):
  _tiny_backbone(tmp_path / "base")
  c = _small(prm_arith.get_config(), records, steps=6)
  c.checkpoint.hf_path = str(tmp_path / "base")
  c.adapter = {"method": "lora", "experts": 1, "rank": 4, "targets": ("q", "v")}
  c.prm.objective = "pairwise"
  summary = prm_train(c, str(tmp_path / "run"), log=lambda *_: None)
  assert summary["objective"] == "pairwise"
  _, params, acfg, _ = load_prm(str(tmp_path / "run" / "prm_model"))
  assert acfg.method == "lora"
  _, base_loaded = hf_io.load_hf_checkpoint(str(tmp_path / "base"))
  np.testing.assert_array_equal(params["embedder"]["embedding"],
                                base_loaded["embedder"]["embedding"])     # frozen base
  assert np.abs(params["adapter"]["prm_head"]["kernel"]).sum() > 0       # trained head
  assert "adapter" in params["layers_0"]["attn"]["q"]


def test_pipeline_end_to_end_on_a_simulated_backend(tmp_path):
  c = prm_arith.get_config()
  c.checkpoint.hf_path = ""
  c.model.overrides = dict(embed_dim=64, num_layers=2, num_heads=2, num_kv_heads=1, head_dim=32,
                           mlp_dim=128)
  c.prm.max_len = 128
  c.train.update(dict(batch_size=4, log_every=1000, eval_every=0, ckpt_every=1000))
  c.pipeline.update(dict(train_questions=10, search_limit=6, orm_samples=4, prm_steps=4,
                         eval_questions=8, max_n=8, n_boot=10, compare_n=(4, 8)))
  # a PRM from another backbone entry (here the same random tiny model + LoRA, exact labels),
  # min-aggregated votes against majority, and a paired step-AUROC difference
  c.pipeline.pretrained_prms = dict(other=dict(
      backbone="policy", head="scalar", labels="exact", steps=4, batch=4, lr=1e-3,
      adapter=dict(method="lora", experts=1, rank=2, targets=("q", "v"))))
  c.pipeline.paired_aggregations = ("min", "product")
  c.pipeline.step_pairs = (("omegaprm_other", "omegaprm"),)
  arith = A.ArithmeticConfig(**POLICY_ARITH)
  from prm_jax import pipeline
  pipeline._CONFIG_PATH[0] = os.path.join(ROOT, "configs", "prm_arith.py")
  probs = (A.make_problems(10, arith, seed=c.pipeline.train_seed)
           + pipeline.heldout_problems(c))
  backend = SimulatedBackend(SimulatedPolicy(probs, p_error=0.2, p_recover=0.1))
  out = pipeline.run(c, str(tmp_path), log=lambda *_: None, backend=backend)
  report = (tmp_path / "report.md").read_text()
  assert "majority vote" in report and "ProcessBench F1, official: threshold 0.5" in report
  by_steps = out["eval"]["best_of_n_by_steps"][8]["omegaprm_product"]
  assert "What best-of-N picks" in report and by_steps["questions"] > 0
  off = out["eval"]["omegaprm"]["processbench_official"]
  assert 0.0 <= off["f1"] <= 1.0 and off["erroneous"] + off["correct"] > 0
  # the position-only baseline and the first-error AUROC that controls for it
  assert 0.5 < out["eval"]["position_step_auroc"] < 1.0
  assert 0.0 <= out["eval"]["omegaprm"]["first_error_auroc"] <= 1.0
  assert "first-error AUROC within position" in report
  assert (tmp_path / "accuracy_vs_n.png").stat().st_size > 1000
  curves = out["eval"]["curves"]
  assert set(curves["majority vote"]) == {1, 2, 4, 8}
  assert 0.0 <= curves["ORM-weighted vote"][8]["mean"] <= 1.0
  assert out["collect"]["math_shepherd"]["questions"] == 10
  # ceilings: pass@N bounds every selection at every N; label-source PRMs are in the report
  for n in (1, 2, 4, 8):
    top = curves["pass@N (oracle answer check)"][n]["mean"]
    assert all(curves[m][n]["mean"] <= top + 1e-9 for m in curves)
  assert "| omegaprm_consensus | consensus |" in report and "OmegaPRM exact labels" in report
  assert "OmegaPRM lora adapter, frozen policy" in report        # full FT vs frozen + LoRA
  assert out["prm_train"]["omegaprm_lora_adapter"]["train_labels"] > 0
  bs = out["eval"]["beam_search"]
  assert "step-level beam search" in report and bs["tokens_per_problem"] > 0
  assert 0.0 <= bs["accuracy"]["value"] <= 1.0 and bs["sampling_at_nearest_n"]
  paired = out["eval"]["paired"]
  other = "OmegaPRM other (policy + lora, scalar head, exact labels)"
  assert out["prm_train"]["omegaprm_other"]["label_source"]["labels"] == "exact"
  assert f"PRM-weighted (min), {other} @ N=8" in paired and other in report
  assert "PRM-weighted (min), OmegaPRM @ N=4" in paired
  iv = out["eval"]["step_intervals"]
  d = iv["paired"]["omegaprm_other-omegaprm"]
  assert d["lo"] <= d["value"] <= d["hi"]
  assert d["value"] == pytest.approx(out["eval"]["omegaprm_other"]["step"]["auroc"]
                                     - out["eval"]["omegaprm"]["step"]["auroc"])
  assert iv["prms"]["omegaprm"]["step_auroc_ci"]["value"] == pytest.approx(
      out["eval"]["omegaprm"]["step"]["auroc"])
  assert "| omegaprm_other-omegaprm |" in report
  for n in (4, 8):
    oracle = paired[f"pass@N (oracle answer check) @ N={n}"]
    assert oracle["n"] == n and oracle["mean"] >= 0.0
    assert oracle["share_of_headroom"] == pytest.approx(1.0) or oracle["mean"] == 0.0
  # resuming skips every finished stage
  again = pipeline.run(c, str(tmp_path), log=lambda *_: None, backend=backend)
  assert again["eval"]["curves"]["majority vote"] == curves["majority vote"]


def test_multi_task_prm_routes_by_record_task(records, tmp_path):
  """Records of two domains train one MoDE PRM with a task router; the task ids reach the
  adapters through packing, and the saved PRM scores per domain."""
  recs = [json.loads(l) for l in open(records)]
  for i, r in enumerate(recs):
    r["task"] = "even" if int(r["question_id"].rsplit("-", 1)[1]) % 2 == 0 else "odd"
  path = tmp_path / "two_tasks.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in recs))
  c = _small(prm_arith.get_config(), str(path), steps=3)
  c.model.overrides = dict(embed_dim=64, num_layers=2, num_heads=2, num_kv_heads=1, head_dim=32,
                           mlp_dim=128)
  c.adapter = {"method": "mode", "experts": 2, "rank": 4, "targets": ("q", "v"),
               "router": "task"}
  summary = prm_train(c, str(tmp_path / "run"), log=lambda *_: None)
  assert summary["task_ids"] == {"even": 0, "odd": 1}
  item = [("Start with 3. Add 4. What is the result?", ["3 + 4 = 7\n", "The answer is 7."])]
  even = scorer_from_dir(str(tmp_path / "run" / "prm_model"), task="even").score(item)[0]
  odd = scorer_from_dir(str(tmp_path / "run" / "prm_model"), task="odd").score(item)[0]
  assert even.shape == odd.shape == (2,)
  with pytest.raises(KeyError, match="not 'math'"):
    scorer_from_dir(str(tmp_path / "run" / "prm_model"), task="math")


def test_saved_prm_scores_with_the_vocabulary_it_was_trained_on(tmp_path):
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  import seqio
  from tokenizers import Tokenizer, models, pre_tokenizers
  from mode_jax.data.vocab import HFTokenizerVocabulary
  from mode_jax.model import ModelConfig
  from prm_jax.prm.model import PRMModel
  from prm_jax.prm.train import save_prm
  cfg = ModelConfig(vocab_size=16, embed_dim=8, num_layers=1, num_heads=2, num_kv_heads=1,
                    head_dim=4, mlp_dim=8)
  params = nn.meta.unbox(PRMModel(cfg).init(jax.random.key(0), jnp.ones((1, 3), jnp.int32))[
      "params"])
  tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(16)}, unk_token="w0"))
  tok.pre_tokenizer = pre_tokenizers.Whitespace()
  tok.save(str(tmp_path / "tokenizer.json"))
  for name, spec in (("hf", {"kind": "hf", "path": str(tmp_path / "tokenizer.json")}),
                     ("gone", {"kind": "sentencepiece", "path": str(tmp_path / "no.model")}),
                     ("old", None)):
    meta = {"template": "{question}\n"} if spec is None else {"template": "{question}\n",
                                                              "vocab": spec}
    save_prm(str(tmp_path / name), cfg, params, None, meta)
  assert isinstance(scorer_from_dir(str(tmp_path / "hf")).vocab, HFTokenizerVocabulary)
  assert scorer_from_dir(str(tmp_path / "hf")).encode("w3", ["w5 w6"])[0] == [3, 5, 6]
  with pytest.raises(FileNotFoundError, match="no.model"):
    scorer_from_dir(str(tmp_path / "gone"))
  assert isinstance(scorer_from_dir(str(tmp_path / "old")).vocab, seqio.ByteVocabulary)


def test_pipeline_prms_start_from_the_pipeline_policy(tmp_path, monkeypatch):
  """Every PRM the pipeline trains starts from the policy it trained (or was given), not from
  whatever config.checkpoint.hf_path names (runs/policy/policy_model by default: the study
  once failed on a machine without it, and earlier runs silently used another policy)."""
  from prm_jax import pipeline
  c = prm_arith.get_config("study")
  seen = []

  class Done(Exception):
    pass
  monkeypatch.setattr(pipeline, "stage_policy", lambda config, wd, log: "WD/policy/policy_model")
  monkeypatch.setattr(pipeline, "stage_collect", lambda *a, **k: {})
  monkeypatch.setattr(pipeline.serve, "load", lambda *a, **k: object())
  monkeypatch.setattr(pipeline, "stage_orm_data", lambda *a, **k: "outcomes.jsonl")

  def fake_train(cfg, out, log):
    seen.append((cfg.checkpoint.hf_path, cfg.checkpoint.pretrained, cfg.prm.head))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "prm_train.json"), "w") as f:
      json.dump({}, f)
    return {}
  monkeypatch.setattr("prm_jax.prm.train.prm_train", fake_train)

  def stop(*a, **k):
    raise Done
  monkeypatch.setattr(pipeline, "stage_eval", stop)
  with pytest.raises(Done):
    pipeline.run(c, str(tmp_path), log=lambda *_: None)
  assert len(seen) == 6 and {s[:2] for s in seen} == {("WD/policy/policy_model", "")}, seen
  # study v2: the tiny PRMs start from the policy, the Gemma ones from Gemma 3 270M
  seen.clear()
  with pytest.raises(Done):
    pipeline.run(prm_arith.get_config("study2"), str(tmp_path / "v2"), log=lambda *_: None)
  assert sorted(seen) == sorted([("WD/policy/policy_model", "", "scalar")] * 4
                                + [("", "gemma3_270m", "scalar"), ("", "gemma3_270m", "tokens")])


def test_pretrained_prm_entries_are_checked_and_named():
  from prm_jax import pipeline
  c = prm_arith.get_config("study2")
  e = dict(c.pipeline.pretrained_prms.gemma_tokens)
  with pytest.raises(ValueError, match=r"pipeline.pretrained_prms.x: head 'vocab'"):
    pipeline.entry_config(c, dict(e, head="vocab"), "r.jsonl", "P",
                          where="pipeline.pretrained_prms.x")
  c.pipeline.label_sources = ("gemma_tokens",)
  with pytest.raises(ValueError, match=r"pretrained_prms: \['gemma_tokens'\] also name"):
    pipeline.extra_prm_names(c)
  c = prm_arith.get_config("study2")
  c.pipeline.paired_aggregations = ("median",)
  with pytest.raises(ValueError, match="paired_aggregations: unknown \\['median'\\]"):
    pipeline.verification_methods(c, False)
  c = prm_arith.get_config("study2")      # the design: 500 problems, N = 16, seed 19
  assert (c.pipeline.eval_questions, c.pipeline.max_n, c.pipeline.eval_seed) == (500, 16, 19)
  assert c.pipeline.step_pairs[0] == ("omegaprm_gemma_tokens", "omegaprm")


def test_saved_prm_is_the_best_dev_evaluation_not_the_last_step(records, tmp_path):
  """With a learning rate high enough that dev loss goes up again, the saved PRM is the
  parameters of the lowest dev objective loss among the evaluations and the last step (it used
  to be the last step): its dev loss, recomputed from the saved directory, is that minimum."""
  c = _small(prm_arith.get_config(), records, steps=12)
  c.train.update(dict(eval_every=3, lr=0.03, warmup=0))
  c.prm.update(dict(dev_fraction=0.3, dev_batches=1000))     # evaluations use the whole dev
  summary = prm_train(c, str(tmp_path / "run"), log=lambda *_: None)
  evals = summary["dev_evals"]
  assert [e["step"] for e in evals] == [3, 6, 9, 12]
  sel = summary["selected"]
  best = min(evals, key=lambda e: e["eval_loss"])
  assert sel["eval_loss"] == pytest.approx(min(best["eval_loss"], sel["last_step_eval_loss"]))
  assert sel["step"] == best["step"] != 12, (evals, sel)   # the last step was not the best
  _, meta = load_prm(str(tmp_path / "run" / "prm_model"))[2:]
  assert meta["selected_step"] == sel["step"]
  # the saved parameters reproduce the selected dev loss, not the last step's
  assert summary["dev"]["eval_loss"] == pytest.approx(sel["eval_loss"], rel=1e-5)
  assert summary["dev"]["eval_loss"] < sel["last_step_eval_loss"]


def test_prm_on_a_backbone_with_bos_puts_it_first_in_training_and_scoring(records, tmp_path):
  """A backbone pretrained with BOS (Gemma, Llama) reads every PRM sequence with BOS first:
  the trainer's rows start with it (no label on it), the saved PRM records it and its scorer
  prepends it (the byte-level tiny backbone has none: unchanged)."""
  from prm_jax.prm import data as prm_data
  from prm_jax.prm.train import scorer_from_dir
  _tiny_backbone(tmp_path / "base", bos_id=5)
  c = _small(prm_arith.get_config(), records, steps=2)
  c.checkpoint.hf_path = str(tmp_path / "base")
  seen = []
  real = prm_data.register_task

  def spy(name, seqs, vocab):
    seen.append(seqs)
    return real(name, seqs, vocab)
  prm_data.register_task = spy
  try:
    prm_train(c, str(tmp_path / "run"), log=lambda *_: None)
  finally:
    prm_data.register_task = real
  rows = seen[0]["train"]
  assert rows and all(r["targets"][0] == 5 and r["labels"][0] == 0 for r in rows)
  assert all(len(r[k]) == len(r["targets"]) for r in rows for k in ("labels", "weights"))
  scorer = scorer_from_dir(str(tmp_path / "run" / "prm_model"))
  ids, ends = scorer.encode("1 + 1?", ["1 + 1 = 2"])
  assert scorer.bos_id == 5 and ids[0] == 5 and ends == [len(ids) - 1]
  assert prm_data.with_bos(rows, None) == rows


def test_prm_backbone_whose_embedding_does_not_fit_the_tokenizer_is_refused(records, tmp_path):
  """A backbone checkpoint with no tokenizer record and 4,096 embedding rows, read with the
  byte-level default (259 ids): VocabularyMismatch naming the checkpoint, before training."""
  from mode_jax.data.vocab import VocabularyMismatch
  _tiny_backbone(tmp_path / "base", vocab_size=4096, num_layers=1)
  c = _small(prm_arith.get_config(), records, steps=2)
  c.checkpoint.hf_path = str(tmp_path / "base")
  with pytest.raises(VocabularyMismatch, match=r"PRM backbone .*base.*4,096 rows"):
    prm_train(c, str(tmp_path / "run"), log=lambda *_: None)
  assert not (tmp_path / "run" / "prm_model").exists()


def test_prm_on_pretrained_gemma3_with_lora_reads_its_tokenizer_and_bos(records, tmp_path):
  """`checkpoint.pretrained=gemma3_270m`: the PRM trains LoRA + head on Gemma 3 270M with
  Gemma's own tokenizer and BOS (2 steps), and its scorer reads steps the same way."""
  from mode_jax import pretrained
  try:
    pretrained.gguf_path("gemma3_270m")
  except ImportError as e:
    missing_install(str(e))
  c = _small(prm_arith.get_config(), records, steps=2)
  c.checkpoint.pretrained = "gemma3_270m"
  c.adapter = {"method": "lora", "experts": 1, "rank": 4, "targets": ("q", "v")}
  c.train.update(dict(batch_size=2, eval_every=0))
  summary = prm_train(c, str(tmp_path / "run"), log=lambda *_: None)
  assert summary["train_labels"] > 0
  scorer = scorer_from_dir(str(tmp_path / "run" / "prm_model"))
  assert scorer.bos_id == 2 and scorer.cfg.vocab_size == 262_144
  assert scorer.vocab.vocab_size > 260_000                       # Gemma's tokenizer, not bytes
  ids, ends = scorer.encode("What is 2 + 3?", ["2 + 3 = 5\n", "The answer is 5"])
  assert ids[0] == 2 and len(ends) == 2
  (probs,) = scorer.score([("What is 2 + 3?", ["2 + 3 = 5\n", "The answer is 5"])])
  assert probs.shape == (2,) and np.all((probs > 0) & (probs < 1))


def test_token_reading_prm_is_the_lms_own_logit_difference(records, tmp_path):
  """`prm.head=tokens`: the step logit is the LM's logit of "+" minus that of "-" (checked
  against the plain Transformer's full logits), no head params; a LoRA PRM trains and its saved
  scorer reads the same way. An untied backbone and a multi-token text are errors."""
  from prm_jax.prm.model import PRMModel
  from prm_jax.prm.train import head_token_ids
  from mode_jax.data.vocab import make_vocab
  cfg, base = _tiny_backbone(tmp_path / "base", tie_embeddings=True)
  vocab = make_vocab("bytes")
  good, bad = head_token_ids(_tokens_cfg(), vocab)
  tok = jax.random.randint(jax.random.key(2), (2, 11), 3, 200)
  lm = Transformer(cfg).apply({"params": base}, tok)
  z = PRMModel(cfg, None, (good, bad)).apply({"params": base}, tok)
  np.testing.assert_allclose(z, lm[..., good] - lm[..., bad], rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="tied embeddings"):
    PRMModel(cfg.replace(tie_embeddings=False), None, (good, bad)).init(jax.random.key(0), tok)
  bad_cfg = _tokens_cfg(tokens=("++", "-"))
  with pytest.raises(ValueError, match="prm.tokens: '\\+\\+' is 2 tokens"):
    head_token_ids(bad_cfg, vocab)
  c = _small(prm_arith.get_config(), records, steps=2)
  c.checkpoint.hf_path = str(tmp_path / "base")
  c.prm.head = "tokens"
  c.adapter = {"method": "lora", "experts": 1, "rank": 4, "targets": ("q", "v")}
  prm_train(c, str(tmp_path / "run"), log=lambda *_: None)
  _, params, _, meta = load_prm(str(tmp_path / "run" / "prm_model"))
  paths = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  assert meta["token_ids"] == [good, bad] and not any("prm_head" in k for k in paths)
  scorer = scorer_from_dir(str(tmp_path / "run" / "prm_model"))
  (p,) = scorer.score([("1 + 1?", ["1 + 1 = 2\n", "The answer is 2"])])
  assert p.shape == (2,) and np.all((p > 0) & (p < 1))


def _tokens_cfg(tokens=("+", "-")):
  import ml_collections
  return ml_collections.ConfigDict(dict(head="tokens", tokens=tokens))
