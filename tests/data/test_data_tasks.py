"""Data: synthetic generators, SNI reading/splitting on the real shared files, GSM8K/MATH, the
task-id feature converter on literal examples, mixtures, determinism, metrics."""

import json
import logging
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from conftest import SHARED_DATA
from mode_jax.data import math_data, metrics, sni, synthetic, synthetic_gen, tasks
from mode_jax.data.features import TaskPrefixLMFeatureConverter
from mode_jax.data.vocab import make_vocab

SNI_DIR = os.path.join(SHARED_DATA, "sni")
GSM_DIR = os.path.join(SHARED_DATA, "gsm8k")
needs_sni = pytest.mark.skipif(not os.path.isdir(SNI_DIR),
                               reason=f"shared SNI data not found at {SNI_DIR}")
needs_gsm = pytest.mark.skipif(not os.path.isdir(GSM_DIR),
                               reason=f"shared GSM8K data not found at {GSM_DIR}")


def _balanced(s):
  while "()" in s or "[]" in s:
    s = s.replace("()", "").replace("[]", "")
  return s == ""


# Independent checkers: recompute each task's output from its input.
WORD_NUM = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten "
                                       "eleven twelve thirteen fourteen fifteen sixteen "
                                       "seventeen eighteen nineteen".split())}
WORD_NUM.update({w: 10 * (i + 2) for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())})


def _parse_words(s):
  total = current = 0
  for part in s.replace("-", " ").split():
    if part == "thousand":
      total, current = total + current * 1000, 0
    elif part == "hundred":
      current *= 100
    else:
      current += WORD_NUM[part]
  return total + current


CHECK = {
    "reverse_string": lambda x: x[::-1],
    "sort_digits": lambda x: "".join(sorted(x)),
    "add_numbers": lambda x: str(sum(int(t) for t in x.split(" + "))),
    "count_char": lambda x: str(x.split(" ; ")[0].count(x.split(" ; ")[1])),
    "caesar_shift": lambda x: "".join(chr((ord(c) - 97 + int(x.split(" ; ")[1])) % 26 + 97)
                                      for c in x.split(" ; ")[0]),
    "kv_lookup": lambda x: dict(p.split("=") for p in x.split(" ; ")[0].split(", "))[
        x.split(" ; ")[1]],
    "bracket_match": lambda x: "yes" if _balanced(x) else "no",
    "majority_label": lambda x: max(set(x.split()), key=x.split().count),
    "every_second_word": lambda x: " ".join(x.split()[1::2]),
    "number_words": lambda x: str(_parse_words(x)),
    "acronym": lambda x: "".join(w[0] for w in x.split()).upper(),
    "longest_word": lambda x: max(x.split(), key=len),
    "dedupe_letters": lambda x: "".join(c for i, c in enumerate(x) if c not in x[:i]),
    "multiply": lambda x: str(int(x.split(" * ")[0]) * int(x.split(" * ")[1])),
}


def test_synthetic_tasks_are_correct_deterministic_and_split():
  assert len(synthetic.TASK_NAMES) >= 12 and set(CHECK) == set(synthetic.TASK_NAMES)
  for name in synthetic.TASK_NAMES:
    train = synthetic.examples(name, "train", 300, seed=3)
    evals = synthetic.examples(name, "validation", 40, seed=3)
    for e in train + evals:
      assert CHECK[name](e["input"]) == e["output"], (name, e)
    assert not {e["input"] for e in train} & {e["input"] for e in evals}, name
    assert len({e["input"] for e in evals}) == 40
    assert synthetic.examples(name, "train", 50, seed=3) == train[:50]
    assert synthetic.examples(name, "train", 50, seed=4) != train[:50]
  assert synthetic_gen.number_words(312) == "three hundred twelve"
  assert synthetic_gen.number_words(40) == "forty"
  assert synthetic_gen.number_words(12034) == "twelve thousand thirty-four"
  for name in synthetic.TASK_NAMES:   # the default sizes (2000 train, 100 eval) are reachable
    assert len(synthetic.examples(name, "validation", 100)) == 100


def _literal_ds(rows):
  return tf.data.Dataset.from_generator(
      lambda: iter(rows), output_signature={
          "inputs": tf.TensorSpec([None], tf.int32), "targets": tf.TensorSpec([None], tf.int32),
          "task_id": tf.TensorSpec([], tf.int32)})


ROWS = [{"inputs": [11, 12, 13], "targets": [21, 22, 1], "task_id": 4},
        {"inputs": [14], "targets": [23, 1], "task_id": 7},
        {"inputs": [15, 16], "targets": [24, 25, 26, 1], "task_id": 2}]


def test_converter_packs_with_task_ids_on_literal_examples():
  conv = TaskPrefixLMFeatureConverter(pack=True)
  out = list(conv(_literal_ds(ROWS), {"inputs": 4, "targets": 4}).as_numpy_iterator())
  assert len(out) == 2   # rows of 8: [ex1 (5 tokens) + ex2 (2 tokens)], [ex3 (5 tokens)]
  r = out[0]
  np.testing.assert_array_equal(r["decoder_input_tokens"], [11, 12, 13, 21, 22, 14, 23, 0])
  np.testing.assert_array_equal(r["decoder_target_tokens"], [12, 13, 21, 22, 1, 23, 1, 0])
  np.testing.assert_array_equal(r["decoder_loss_weights"], [0, 0, 1, 1, 1, 1, 1, 0])
  np.testing.assert_array_equal(r["decoder_task_ids"], [4, 4, 4, 4, 4, 7, 7, 0])
  np.testing.assert_array_equal(r["decoder_segment_ids"], [1, 1, 1, 1, 1, 2, 2, 0])
  np.testing.assert_array_equal(r["decoder_positions"], [0, 1, 2, 3, 4, 0, 1, 0])
  np.testing.assert_array_equal(out[1]["decoder_task_ids"], [2] * 5 + [0] * 3)


def test_converter_unpacked_bos_and_loss_on_all_tokens():
  conv = TaskPrefixLMFeatureConverter(pack=False, loss_on_targets_only=False, bos_id=2)
  r = next(conv(_literal_ds(ROWS[1:2]), {"inputs": 3, "targets": 3}).as_numpy_iterator())
  np.testing.assert_array_equal(r["decoder_input_tokens"], [2, 14, 23, 0, 0, 0])
  np.testing.assert_array_equal(r["decoder_target_tokens"], [14, 23, 1, 0, 0, 0])
  np.testing.assert_array_equal(r["decoder_loss_weights"], [1, 1, 1, 0, 0, 0])
  np.testing.assert_array_equal(r["decoder_task_ids"], [7, 7, 7, 0, 0, 0])
  assert "decoder_segment_ids" not in r


def test_task_id_table_is_stable_across_runs(tmp_path):
  t = tasks.TaskIdTable.load_or_create(str(tmp_path), ["b", "a"])
  assert t.ids == {"b": 0, "a": 1}
  again = tasks.TaskIdTable.load_or_create(str(tmp_path), ["a", "c", "b"])
  assert again.ids == {"b": 0, "a": 1, "c": 2}
  assert json.loads((tmp_path / "task_ids.json").read_text()) == again.ids
  with pytest.raises(KeyError, match="zzz"):
    again["zzz"]
  (tmp_path / "task_ids.json").write_text("{oops")
  with pytest.raises(ValueError, match="task_ids.json"):
    tasks.TaskIdTable.load_or_create(str(tmp_path), ["a"])


def test_task_id_table_ignores_repeated_names(tmp_path):
  """SNI passes train + validation task lists, which name the same tasks: ids stay 0..n-1 in
  first-seen order (they used to be all n, out of range, and a resume raised)."""
  t = tasks.TaskIdTable.load_or_create(str(tmp_path), ["a", "b", "c"] * 2)
  assert t.ids == {"a": 0, "b": 1, "c": 2}
  again = tasks.TaskIdTable.load_or_create(str(tmp_path), ["c", "d", "d", "a"])
  assert again.ids == {"a": 0, "b": 1, "c": 2, "d": 3}


def _first_batches(ds, n):
  it = ds.as_numpy_iterator()
  return [next(it) for _ in range(n)]


def test_synthetic_mixture_batches_ids_determinism_resume_and_shards(tmp_path):
  vocab = make_vocab("bytes")
  names = tasks.make_synthetic_tasks(vocab, num_train=60, num_eval=10)
  names_again = tasks.make_synthetic_tasks(vocab, num_train=60, num_eval=10)   # safe twice
  assert names == names_again
  table = tasks.TaskIdTable.load_or_create(str(tmp_path), names)
  mix = tasks.make_mixture("test_syn_mix", names, rate="examples", temperature=2.0)
  lengths = {"inputs": 160, "targets": 32}
  get = lambda **kw: tasks.get_dataset(mix, "train", lengths, batch_size=4, seed=1, **kw)
  b = _first_batches(get(), 5)
  ids = np.concatenate([x["decoder_task_ids"][x["decoder_segment_ids"] > 0] for x in b])
  assert len(set(ids.tolist())) >= 5 and set(ids.tolist()) <= set(range(len(table)))
  for x, y in zip(b, _first_batches(get(), 5)):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  for x, y in zip(b[3:], _first_batches(get(start_batch=3), 2)):
    np.testing.assert_array_equal(x["decoder_input_tokens"], y["decoder_input_tokens"])
  s0 = _first_batches(get(shard_index=0, num_shards=2), 2)
  s1 = _first_batches(get(shard_index=1, num_shards=2), 2)
  assert not np.array_equal(s0[0]["decoder_input_tokens"], s1[0]["decoder_input_tokens"])
  # Explicit rates: a task at rate 0 never appears.
  only = tasks.make_mixture("test_syn_only", names[:2], rate="explicit",
                            rates={names[0]: 1.0, names[1]: 0.0})
  ob = _first_batches(tasks.get_dataset(only, "train", lengths, batch_size=4, seed=0), 3)
  assert {int(t) for x in ob for t in x["decoder_task_ids"][x["decoder_segment_ids"] > 0]} == {0}
  # Every segment's loss-weighted targets decode to a reference answer of its task.
  x = b[0]
  seg, row = x["decoder_segment_ids"][0], 0
  tgt = x["decoder_target_tokens"][row][(seg == 1) & (x["decoder_loss_weights"][row] == 1)]
  prompt = vocab.decode([int(t) for t in x["decoder_input_tokens"][row][seg == 1]])
  task = synthetic.TASK_NAMES[int(x["decoder_task_ids"][row][0])]
  inp = re.search(r"Input: (.*)\nOutput: ", prompt).group(1)
  assert vocab.decode([int(t) for t in tgt[:-1]]) == CHECK[task](inp)


@needs_sni
def test_sni_real_files_parse_and_split_90_10():
  splits = sni.task_splits(SNI_DIR, "within_task")
  assert len(splits["train"]) == 10   # task218 is in no official split list
  n_train = sum(len(t["instances"]) for t in splits["train"])
  n_eval = sum(len(t["instances"]) for t in splits["validation"])
  assert 0.05 < n_eval / (n_train + n_eval) < 0.15
  for tr, ev in zip(sorted(splits["train"], key=lambda t: t["name"]),
                    sorted(splits["validation"], key=lambda t: t["name"])):
    assert tr["name"] == ev["name"]
    assert not {i["id"] for i in tr["instances"]} & {i["id"] for i in ev["instances"]}
  # The split of an instance does not depend on the others (a truncated file splits alike).
  path = os.path.join(SNI_DIR, "tasks", "task363_sst2_polarity_classification.json")
  task = sni.read_task(path)
  full = {i["id"] for i in task["instances"] if sni.in_eval_split(task["name"], i["id"])}
  half = {i["id"] for i in task["instances"][:20] if sni.in_eval_split(task["name"], i["id"])}
  assert half <= full
  with218 = sni.task_splits(SNI_DIR, "within_task",
                            names=["task218_rocstories_swap_order_answer_generation"])
  assert [t["name"] for t in with218["train"]] == ["task218_rocstories_swap_order_answer_generation"]
  unseen = sni.task_splits(SNI_DIR, "unseen_tasks")
  assert len(unseen["train"]) == 10 and unseen["validation"] == []   # no test task shared


@needs_sni
def test_sni_prompt_format_and_seqio_tasks():
  task = sni.read_task(os.path.join(SNI_DIR, "tasks", "task1289_trec_classification.json"))
  p = sni.prompt(task, "What is a wok ?", num_pos=2)
  assert p.startswith("Definition: " + task["definition"].strip())
  assert "\n\n Positive Example 1 -\nInput: " in p and " Positive Example 3" not in p
  assert p.endswith("Now complete the following example -\nInput: What is a wok ?\nOutput: ")
  vocab = make_vocab("bytes")
  built = tasks.make_sni_tasks(SNI_DIR, vocab, num_pos=0)
  assert len(built["train"]) == 10 and all(n.startswith("sni_task") for n in built["train"])
  rows = tasks.task_examples(built["validation"][0], "validation")
  assert rows and all(r["inputs"].startswith("Definition: ") for r in rows)
  ds = tasks.get_dataset(built["train"][0], "train", {"inputs": 512, "targets": 32},
                         batch_size=2, seed=0)
  assert next(ds.as_numpy_iterator())["decoder_input_tokens"].shape == (2, 544)


def test_sni_bad_files_and_non_ascii(tmp_path, caplog):
  d = tmp_path / "tasks"
  d.mkdir()
  good = {"Definition": ["Répondez en français — «oui»."], "Positive Examples": [],
          "Input_language": ["English"], "Output_language": ["English"],
          "Instruction_language": ["English"],
          "Instances": [{"id": "x-1", "input": "Café 東京 🙂", "output": ["naïve"]}]}
  (d / "good.json").write_text(json.dumps(good, ensure_ascii=False), encoding="utf-8")
  t = sni.read_task(str(d / "good.json"))
  p = sni.prompt(t, t["instances"][0]["input"], 0)
  vocab = make_vocab("bytes")
  assert "Café 東京 🙂" in p and vocab.decode(vocab.encode(p)) == p
  bad = dict(good)
  del bad["Definition"]
  (d / "nodef.json").write_text(json.dumps(bad))
  with pytest.raises(sni.SNIError, match=r"nodef.json.*'Definition'"):
    sni.read_task(str(d / "nodef.json"))
  bad = dict(good, Instances=[{"id": "y", "output": ["a"]}])
  (d / "noinput.json").write_text(json.dumps(bad))
  with pytest.raises(sni.SNIError, match=r"noinput.json: 'Instances'\[0\]: missing field 'input'"):
    sni.read_task(str(d / "noinput.json"))
  (d / "broken.json").write_text('{"Definition": ')
  with pytest.raises(sni.SNIError, match="broken.json: invalid JSON"):
    sni.read_task(str(d / "broken.json"))
  (d / "empty.json").write_text(json.dumps(dict(good, Instances=[{"id": "z", "input": "q",
                                                                   "output": []}])))
  with caplog.at_level(logging.WARNING):
    loaded = sni.load_tasks(str(d), ["empty", "good"])
  assert [t["name"] for t in loaded] == ["good"] and "empty" in caplog.text


def _long_task(tmp_path, definition_words: int):
  d = tmp_path / "sni" / "tasks"
  d.mkdir(parents=True)
  (tmp_path / "sni" / "splits" / "default").mkdir(parents=True)
  task = {"Definition": [" ".join(f"rule{i}" for i in range(definition_words))],
          "Positive Examples": [{"input": "x" * 120, "output": "y" * 40},
                                {"input": "u" * 120, "output": "v" * 40}],
          "Input_language": ["English"], "Output_language": ["English"],
          "Instruction_language": ["English"],
          "Instances": [{"id": f"t-{k}", "input": f"instance {k} " + "w" * 30,
                         "output": ["ok"]} for k in range(40)]}
  (d / "task001_long.json").write_text(json.dumps(task))
  (tmp_path / "sni" / "splits" / "default" / "train_tasks.txt").write_text("task001_long\n")
  (tmp_path / "sni" / "splits" / "default" / "test_tasks.txt").write_text("")
  return str(tmp_path / "sni"), sni.read_task(str(d / "task001_long.json"))


@pytest.mark.parametrize("words,budget,examples,cut", [
    (5, 600, 2, False), (5, 400, 1, False), (40, 400, 0, False), (3000, 400, 0, True)])
def test_sni_prompts_fit_the_budget_and_keep_the_instance(tmp_path, words, budget, examples,
                                                          cut):
  """Tk-Instruct fitting: positive examples are dropped first, then the definition is cut;
  the instance and the "Output:" cue always survive (seqio used to right-trim them away)."""
  vocab = make_vocab("bytes")
  count = lambda text: len(vocab.encode(text))
  sni_dir, task = _long_task(tmp_path, words)
  inst = task["instances"][0]["input"]
  p = sni.prompt(task, inst, 2, max_tokens=budget, count=count)
  assert count(p) <= budget and p.endswith("Input: " + inst + ".\nOutput: ")
  assert p.count("Positive Example") == examples
  assert ("rule4" in p) and (("..." in p) == cut)
  assert sni.prompt(task, inst, 2) == sni.prompt(task, inst, 2, max_tokens=10**6, count=count)
  tiny = sni.prompt(task, "z" * 500, 2, max_tokens=100, count=count)
  assert count(tiny) <= 100 and tiny.endswith("\nOutput: ") and "zzz" in tiny
  # Through seqio at that budget: every training input ends with the cue.
  names = tasks.make_sni_tasks(sni_dir, vocab, prefix=f"fit{words}_{budget}_",
                               max_input_tokens=400)
  for ex in tasks.task_examples(names["train"][0], "train")[:5]:
    assert ex["inputs"].endswith("\nOutput: ") and count(ex["inputs"]) <= 400


@needs_gsm
def test_gsm8k_real_files():
  rows = math_data.read_gsm8k(os.path.join(GSM_DIR, "train.jsonl"))
  assert len(rows) == 7473
  first = rows[0]
  assert first["answer"] == "72" and len(first["steps"]) == 2
  assert first["steps"][0] == "Natalia sold 48/2 = 24 clips in May."
  assert all("<<" not in s for r in rows for s in r["steps"]) and all(r["answer"] for r in rows)
  assert len(math_data.read_gsm8k(os.path.join(GSM_DIR, "test.jsonl"))) == 1319


def test_math_format_and_errors(tmp_path):
  rec = {"problem": "What is $1+1$?", "solution": "We add.\n\nSo $1+1=2$.",
         "answer": "2", "subject": "Prealgebra", "level": 1, "unique_id": "test/pre/1.json"}
  path = tmp_path / "m.jsonl"
  path.write_text(json.dumps(rec) + "\n" + json.dumps({"problem": "x"}) + "\n")
  with pytest.raises(math_data.MathDataError, match=r"m.jsonl:2: .*'solution'"):
    math_data.read_math(str(path))
  path.write_text(json.dumps(rec) + "\n")
  r = math_data.read_math(str(path))[0]
  assert r["steps"] == ["We add.", "So $1+1=2$."] and r["answer"] == "2"
  assert r["subject"] == "Prealgebra" and r["id"] == "test/pre/1.json"
  vocab = make_vocab("bytes")
  name = tasks.make_math_task({"test": str(path)}, vocab, kind="math", name="test_math")
  ex = tasks.task_examples(name, "test")[0]
  assert ex["targets"].endswith("The answer is 2.") and ex["references"] == "2"
  assert math_data.normalize_number("1,000") == "1000" and math_data.normalize_number("7.50") == "7.5"


def test_metrics_on_literal_values():
  assert abs(metrics.rouge_l("the cat sat", ["the cat sat on the mat"]) - 200 / 3) < 1e-6
  assert metrics.rouge_l("dog", ["cat", "dog"]) == 100.0
  assert metrics.exact_match("The Cat.", ["a cat"]) == 100.0
  assert metrics.exact_match("cats", ["cat"]) == 0.0
  m = metrics.rouge_em_metrics([["POS"], ["NEG", "negative"]], ["POS", "negative"])
  assert m == {"rougeL": 100.0, "exact_match": 100.0}
  assert metrics.postprocess(b"x", example={"references": "a\x1eb".encode()}, is_target=True) \
      == ["a", "b"]
  assert metrics.math_answer_metrics([["18"], ["5"]], ["so The answer is $18.", "The answer is 6."]) \
      == {"accuracy": 50.0}
  table, md = metrics.per_task_table({"t1": {"rougeL": 50.0}, "t2": {"rougeL": 70.0}})
  assert table["mean"] == {"rougeL": 60.0} and "| **mean** | **60.00** |" in md
  a = {f"t{i}": 1.0 for i in range(10)}
  b = dict({f"t{i}": 0.0 for i in range(9)}, t9=2.0)
  w = metrics.win_rates(a, b)
  assert (w["wins"], w["losses"], w["ties"]) == (9, 1, 0) and w["win_rate"] == 0.9
  assert abs(w["p_value"] - 22 / 1024) < 1e-9 and not w["significant"]
  w = metrics.win_rates({f"t{i}": 1.0 for i in range(20)}, {f"t{i}": 0.0 for i in range(20)})
  assert w["significant"] and w["p_value"] < 1e-5


def test_packing_keeps_zero_valued_tokens_and_task_zero():
  """Token id 0 (a real token in Llama 3 / Qwen2) and task id 0 survive packing."""
  rows = [{"inputs": [0, 5], "targets": [0, 1], "task_id": 0},
          {"inputs": [7], "targets": [0, 0, 1], "task_id": 3}]
  r = next(TaskPrefixLMFeatureConverter(pack=True)(
      _literal_ds(rows), {"inputs": 4, "targets": 4}).as_numpy_iterator())
  np.testing.assert_array_equal(r["decoder_input_tokens"], [0, 5, 0, 7, 0, 0, 0, 0])
  np.testing.assert_array_equal(r["decoder_target_tokens"], [5, 0, 1, 0, 0, 1, 0, 0])
  np.testing.assert_array_equal(r["decoder_loss_weights"], [0, 1, 1, 1, 1, 1, 0, 0])
  np.testing.assert_array_equal(r["decoder_task_ids"], [0, 0, 0, 3, 3, 3, 0, 0])
  np.testing.assert_array_equal(r["decoder_segment_ids"], [1, 1, 1, 2, 2, 2, 0, 0])


@needs_sni
def test_tfds_path_gives_the_same_sni_examples_as_json(tmp_path):
  from mode_jax.data import tfds_builders
  tfds_builders.prepare_sni(SNI_DIR, str(tmp_path), num_pos=2)
  vocab = make_vocab("bytes")
  direct = tasks.make_sni_tasks(SNI_DIR, vocab, prefix="sni_json_")
  via = tasks.make_sni_tasks(SNI_DIR, vocab, prefix="sni_tfds_", tfds_data_dir=str(tmp_path))
  assert len(direct["validation"]) == len(via["validation"]) == 10
  import seqio
  for split in ("train", "validation"):
    for a, b in zip(direct[split], via[split]):
      get = lambda n: sorted(
          (ex["inputs_pretokenized"].decode(), ex["targets_pretokenized"].decode(),
           ex["references"].decode(), int(ex["task_id"]))
          for ex in seqio.get_mixture_or_task(n).get_dataset(
              None, split=split, shuffle=False).as_numpy_iterator())
      assert get(a) == get(b) and get(a)


@needs_gsm
def test_tfds_gsm8k_matches_json(tmp_path):
  from mode_jax.data import tfds_builders
  builder = tfds_builders.prepare_gsm8k(GSM_DIR, str(tmp_path))
  ds = builder.as_dataset(split="test").take(3)
  got = sorted((ex["id"].decode(), ex["targets"].decode()) for ex in ds.as_numpy_iterator())
  recs = {r["id"]: r for r in math_data.read_gsm8k(os.path.join(GSM_DIR, "test.jsonl"))}
  rows = dict(zip(recs, math_data.math_rows(list(recs.values()))))
  assert got and all(rows[i]["targets"] == t for i, t in got)


def test_tasks_evaluate_with_their_metric_fns_and_pretrain_task_builds():
  import seqio
  vocab = make_vocab("bytes")
  name = tasks.make_synthetic_tasks(vocab, names=["add_numbers"], num_train=20, num_eval=10)[0]
  task = seqio.get_mixture_or_task(name)
  exs = list(task.get_dataset(None, split="validation", shuffle=False).as_numpy_iterator())
  targets = [task.postprocess_fn(ex["targets_pretokenized"], example=ex, is_target=True)
             for ex in exs]
  preds = [t[0] for t in targets]
  for fn in task.metric_fns:
    assert fn(targets, preds) == {"rougeL": 100.0, "exact_match": 100.0}
  wrong = [str(int(p) + 1) for p in preds]
  assert task.metric_fns[0](targets, wrong)["exact_match"] == 0.0
  pre = tasks.make_pretrain_task(vocab, num_train=100, num_eval=10)
  b = next(tasks.get_dataset(pre, "train", {"inputs": 8, "targets": 120}, batch_size=2,
                             loss_on_targets_only=False).as_numpy_iterator())
  w, seg = b["decoder_loss_weights"], b["decoder_segment_ids"]
  np.testing.assert_array_equal(w, (seg > 0).astype(w.dtype))   # loss on every real token


@needs_sni
def test_sni_data_kind_numbers_tasks_0_to_n_minus_1_and_resumes(tmp_path):
  """The `sni` data kind on the shared files: every task's id is in [0, n) (task routers see a
  real one-hot) and building it again in the same workdir (a resume) works."""
  import ml_collections
  from mode_jax.train import data_kinds
  dcfg = ml_collections.ConfigDict(dict(sni_dir=SNI_DIR, protocol="within_task", num_pos=2,
                                        only_tasks=(), inputs_len=1024, bos_id=-1))
  vocab = make_vocab("bytes")
  names, evals, table = data_kinds.sni(dcfg, vocab, str(tmp_path))
  assert sorted(table.ids.values()) == list(range(len(table))) and len(table) == len(names)
  assert set(evals) <= set(names)
  _, _, again = data_kinds.sni(dcfg, vocab, str(tmp_path))
  assert again.ids == table.ids
