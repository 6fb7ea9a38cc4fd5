"""The offline ProcessBench-protocol set on GSM8K test solutions: the injected step is the
first that differs from the reference (checked on the text, not through the builder), the
steps before it are the reference's, the corrupted step's arithmetic is wrong (arithmetic) or
its operand no longer matches the earlier result (copy), half the solutions are left correct,
the draw is seeded, bad input is an error naming the line, and no question is in GSM8K train."""

import json
import os
import re

import pytest

from prm_jax import gsm8k_processbench as G
from prm_jax.evaluate import read_processbench

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GSM8K = os.path.join(ROOT, "..", "shared", "data", "gsm8k")
ROW = {"question": "Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4. She sells "
                   "the rest for $2 each. How much does she make?",
       "answer": "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
                 "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer's market.\n#### 18"}
NUM = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _numbers(text):
  return [float(t.replace(",", "")) for t in NUM.findall(text)]


def _plain_steps(answer):      # the reference as a reader sees it, written independently
  body, final = answer.split("####")
  return [re.sub(r"<<.*?>>", "", ln).strip() for ln in body.strip().split("\n") if ln.strip()]


def test_copy_error_on_a_known_solution_keeps_the_steps_arithmetic_but_breaks_the_copy():
  lines, _ = G.parse_reference(ROW["answer"])
  step, new = G.corrupt(lines, "copy", __import__("random").Random(0))
  assert step == 1                                # the only step that reuses a result (9)
  a, b, c = _numbers(G.visible(new))[:3]
  assert a != 9 and b == 2 and a * b == c         # its own arithmetic holds, the copy does not
  step, new = G.corrupt(lines, "arithmetic", __import__("random").Random(0))
  nums = _numbers(G.visible(new))
  assert step in (0, 1)
  if step == 1:
    assert nums[0] * nums[1] != nums[2]
  else:
    assert nums[0] - nums[1] - nums[2] != nums[3]


def test_malformed_references_are_skipped_and_counted():
  bad = {"question": "q", "answer": "So 2 + 2 = <<2+2=5>>5 apples.\n#### 5"}
  items, counts = G.build([bad, ROW], seed=0)
  assert counts["malformed_reference"] == 1 and len(items) == 1


def test_bad_input_names_the_file_and_line(tmp_path):
  src = tmp_path / "in.jsonl"
  src.write_text(json.dumps(ROW) + "\n" + json.dumps({"question": "q"}) + "\n")
  with pytest.raises(SystemExit, match=r"in.jsonl:2: need string fields"):
    G.main([f"--input={src}", f"--output={tmp_path / 'out.jsonl'}"])
  assert not (tmp_path / "out.jsonl").exists()


@pytest.fixture(scope="module")
def gsm8k_test():
  path = os.path.join(GSM8K, "test.jsonl")
  if not os.path.exists(path):
    pytest.skip(f"{path} absent (../shared/data/gsm8k)")
  return [json.loads(ln) for ln in open(path) if ln.strip()]


def test_the_set_on_gsm8k_test_has_its_errors_where_the_labels_say(gsm8k_test, tmp_path):
  out = tmp_path / "set.jsonl"
  items, counts = G.main([f"--input={os.path.join(GSM8K, 'test.jsonl')}", f"--output={out}"])
  assert counts["written"] == len(items) > 0.95 * len(gsm8k_test)
  by_q = {r["question"]: r for r in gsm8k_test}
  correct = [it for it in items if it["label"] == -1]
  assert 0.45 < len(correct) / len(items) < 0.55
  for it in items:
    ref = _plain_steps(by_q[it["problem"]]["answer"])
    assert it["steps"][-1].startswith("The answer is ")
    steps = it["steps"][:-1]
    if it["label"] == -1:
      assert steps == ref
      continue
    k = it["label"]
    assert steps[:k] == ref[:k] and steps[k + 1:] == ref[k + 1:]   # one step changed: k
    assert steps[k] != ref[k] and it["original_step"] == ref[k]
    old, new = _numbers(ref[k]), _numbers(steps[k])
    changed = sum(x != y for x, y in zip(old, new)) + abs(len(old) - len(new))
    assert 1 <= changed <= (1 if it["error_kind"] == "arithmetic" else 2), (ref[k], steps[k])
  # the project's ProcessBench reader takes the file as it is
  read, errors = read_processbench(str(out))
  assert not errors and [r["first_error"] for r in read] == [it["label"] for it in items]
  # seeded: the same seed gives the same set, another seed another draw
  again, _ = G.build(gsm8k_test, seed=0)
  other, _ = G.build(gsm8k_test, seed=1)
  assert again == items and [i["label"] for i in other] != [i["label"] for i in items]


def test_no_question_of_the_set_is_in_gsm8k_train(gsm8k_test):
  train = os.path.join(GSM8K, "train.jsonl")
  norm = lambda q: " ".join(q.lower().split())
  train_q = {norm(json.loads(ln)["question"]) for ln in open(train) if ln.strip()}
  items, _ = G.build(gsm8k_test[:400], seed=0)
  assert not {norm(it["problem"]) for it in items} & train_q


def test_training_records_label_each_prefix_by_the_injected_step():
  """Per problem: the reference (every prefix 1.0) and one corrupted solution whose prefixes
  are 1.0 up to the step that differs from the reference (found here by comparing texts) and
  0.0 from it on; the shared prefix is recorded once; steps carry the scorer's separator."""
  recs, counts = G.training_records([ROW], seed=3)
  assert counts["records"] == len(recs) and counts["arithmetic"] + counts["copy"] == 1
  ref = _plain_steps(ROW["answer"]) + ["The answer is 18."]
  by_steps = {tuple(r["steps"]): r["mc"] for r in recs}
  assert len(by_steps) == len(recs)                          # no prefix twice
  ref_pieces = [s + "\n" for s in ref[:-1]] + [ref[-1]]
  for k in range(1, len(ref) + 1):                           # the reference: all right
    assert by_steps[tuple(ref_pieces[:k])] == 1.0
  wrong = max((s for s in by_steps if list(s) != ref_pieces[:len(s)]), key=len)
  first = next(i for i, (a, b) in enumerate(zip(wrong, ref_pieces)) if a != b)
  for k in range(first + 1, len(wrong) + 1):
    assert by_steps[wrong[:k]] == 0.0
  assert len(recs) == len(ref) + len(wrong) - first
  assert {r["question_id"] for r in recs} == {"gsm8k-train-0"}


def test_training_records_leave_out_the_evaluation_split(tmp_path):
  """--records drops every row whose question is in an excluded file (default: the test.jsonl
  beside --input) and refuses an excluded file as its input."""
  other = dict(ROW, question="Tom has 3 apples and buys 4 more. How many now?",
               answer="He has 3 + 4 = <<3+4=7>>7 apples.\nThen 7 * 1 = <<7*1=7>>7.\n#### 7")
  (tmp_path / "train.jsonl").write_text(json.dumps(ROW) + "\n" + json.dumps(other) + "\n")
  held = dict(ROW, question="  " + ROW["question"].upper() + " ")   # the same, normalised
  (tmp_path / "test.jsonl").write_text(json.dumps(held) + "\n")
  recs, counts = G.main([f"--input={tmp_path / 'train.jsonl'}", "--records",
                         f"--output={tmp_path / 'r.jsonl'}"])
  assert counts["excluded"] == 1 and {r["question"] for r in recs} == {other["question"]}
  with pytest.raises(SystemExit, match="is an excluded"):
    G.main([f"--input={tmp_path / 'test.jsonl'}", "--records", f"--output={tmp_path / 'x'}",
            f"--exclude={tmp_path / 'test.jsonl'}"])


def test_gsm8k_prm_config_trains_on_the_records_and_scores_the_set(tmp_path):
  """configs/prm_gsm8k.py (a tiny tied backbone with the same token head and LoRA standing
  in for Gemma): every record becomes a labelled step, and the saved PRM scores the
  ProcessBench-format set through prm_jax.evaluate."""
  import jax
  import jax.numpy as jnp
  from configs import prm_gsm8k
  from mode_jax.model import Transformer, hf_io, presets
  from prm_jax import evaluate
  from prm_jax.prm.train import prm_train
  rows = [dict(ROW, question=ROW["question"] + f" (case {i})") for i in range(12)]
  recs, _ = G.training_records(rows, seed=0)
  (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
  cfg = presets.get("tiny", embed_dim=64, num_layers=1, num_heads=2, num_kv_heads=1,
                    head_dim=32, mlp_dim=128, tie_embeddings=True)
  base = Transformer(cfg).init(jax.random.key(1), jnp.ones((1, 8), jnp.int32))["params"]
  hf_io.save_hf_checkpoint(str(tmp_path / "base"), cfg, base)
  c = prm_gsm8k.get_config()
  assert (c.checkpoint.pretrained, c.prm.head, c.adapter.method) == ("gemma3_270m", "tokens",
                                                                     "lora")
  c.checkpoint.hf_path, c.checkpoint.pretrained = str(tmp_path / "base"), ""
  c.prm.records = (str(tmp_path / "r.jsonl"),)
  c.train.update(dict(steps=2, batch_size=2, log_every=1, eval_every=2, ckpt_every=2))
  info = prm_train(c, str(tmp_path / "run"), log=lambda *_: None)
  assert info["train_labels"] + info["validation_labels"] == len(recs)
  items, _ = G.build(rows, seed=0)
  (tmp_path / "set.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
  res = evaluate.main([f"--prm={tmp_path / 'run' / 'prm_model'}",
                       f"--data={tmp_path / 'set.jsonl'}", "--protocol=both"])
  assert res["malformed_lines"] == {"set": 0}
  assert set(res["official"]["subsets"]) == set(res["dev_tuned"]["subsets"]) == {"set"}
  assert 0.0 <= res["official"]["average_f1"] <= 1.0
  # per error kind: that kind's erroneous items and every correct one
  kinds = {it["error_kind"] for it in items if it["label"] >= 0}
  split = res["official"]["by_error_kind"]
  assert set(split) == {f"set/{k}" for k in kinds}
  for k in kinds:
    assert split[f"set/{k}"]["erroneous"] == sum(it.get("error_kind") == k for it in items)
    assert split[f"set/{k}"]["correct"] == sum(it["label"] < 0 for it in items)
  # --prm with --critic: the PRM's step scores with the rule's flagged step set to 0
  alone, both = tmp_path / "alone.jsonl", tmp_path / "both.jsonl"
  evaluate.main([f"--prm={tmp_path / 'run' / 'prm_model'}", f"--data={tmp_path / 'set.jsonl'}",
                 f"--scores_out={alone}"])
  res = evaluate.main([f"--prm={tmp_path / 'run' / 'prm_model'}", "--critic=gsm8k_calc",
                       f"--data={tmp_path / 'set.jsonl'}", f"--scores_out={both}"])
  assert res["critic"]["rule"] == "gsm8k_calc"
  parts = res["critic_parts"]["set"]
  assert set(parts) >= {"prm", "critic", "combined"}
  assert parts["combined"]["f1"] == pytest.approx(res["subsets"]["set"]["f1"])
  a = [json.loads(x) for x in alone.read_text().splitlines()]
  b = [json.loads(x) for x in both.read_text().splitlines()]
  assert [r["first_error"] for r in a] == [it["label"] for it in items]
  assert [r["kind"] for r in a] == [it.get("error_kind") if it["label"] >= 0 else None
                                    for it in items]
  n_flagged = 0
  for ra, rb, it in zip(a, b, items):
    want = list(ra["scores"])
    hit = next((i for i, s in enumerate(it["steps"]) if G.false_calculation(s)), -1)
    if hit >= 0:
      want[hit], n_flagged = 0.0, n_flagged + 1
    assert rb["scores"] == pytest.approx(want, abs=1e-6), it
  assert n_flagged > 0          # the built set has false calculations for the rule to flag
  with pytest.raises(ValueError, match="unknown variant"):
    prm_gsm8k.get_config("vocab")


@pytest.mark.parametrize("text,wrong", [
    ("Natalia sold 48/2 = 24 clips in May.", False), ("She sold 48/2 = 23 clips.", True),
    ("$5 x 3 = $15", False), ("5 x 3 = 16", True), ("(5+3)*2=15", True),
    ("1,000 + 200 = 1,200", False), ("1,000 + 200 = 1,300", True),
    ("He has 3, 4 + 5 = 9 apples", False),           # ", " starts a new expression
    ("10/3 = 3.33", False), ("10/3 = 3", False), ("10/3 = 5", True),   # rounding is allowed
    ("100 / 6 = 17 boxes", False),
    ("5 - 8 = -3", False), ("3 + 4 = 8 + 2 = 10", False),           # the result goes on
    ("60 students x 2/3 = 40 students", False),      # an operand in words: not checked
    ("1/2 * 1/2 = 1/4", False), ("3 / 6 = 50%", False), ("25 / 1/3 = 75", False),
    ("Third hour = 66(1/3) = 22 apples", False), ("It sets at 6:00+48=6:48", False),
    ("The answer is 5.", False)])
def test_false_calculation_reads_written_calculations(text, wrong):
  assert (G.false_calculation(text) is not None) == wrong


def test_false_calculation_on_gsm8k_references_and_injected_errors(gsm8k_test):
  """Reference lines (their annotations checked by parse_reference) are almost never flagged
  (the few flags are mostly the references' own slips, e.g. "$32 - $20 = $300"); most injected
  arithmetic errors are (the rest change a number the line does not write out as a
  calculation); copy errors keep each line's arithmetic and are not."""
  import random
  lines = [ln for r in gsm8k_test for ln in (G.parse_reference(r["answer"]) or ([], ""))[0]]
  flagged = sum(G.false_calculation(G.visible(ln)) is not None for ln in lines)
  assert len(lines) > 4000 and flagged / len(lines) < 0.002
  for kind, lo, hi in (("arithmetic", 0.65, 1.0), ("copy", 0.0, 0.02)):
    found = []
    for i, r in enumerate(gsm8k_test[:800]):
      parsed = G.parse_reference(r["answer"])
      hit = parsed and G.corrupt(parsed[0], kind, random.Random(i))
      if hit:
        found.append(G.false_calculation(G.visible(hit[1])) is not None)
    assert len(found) > 500 and lo <= sum(found) / len(found) <= hi, (kind, sum(found))


def test_the_one_sided_check_reports_mc_positives_on_false_calculations():
  """label_report --exact=gsm8k_calc: only prefixes with a false written calculation are
  judged (as wrong); the report gives how many and the share MC labels positive."""
  from mode_jax.dataeval import compare
  from prm_jax import label_quality
  recs = [dict(question="q1", steps=["3 + 4 = 8 apples."], mc=0.5),
          dict(question="q1", steps=["3 + 4 = 7 apples."], mc=0.75),
          dict(question="q2", steps=["2 * 5 = 10.", "10 - 1 = 8."], mc=0.0),
          dict(question="q2", steps=["2 * 5 = 10."], mc=1.0),
          dict(question="q3", steps=["2 * 6 = 13.", "13 + 1 = 14."], mc=0.25)]
  sec = label_quality.section(exact="gsm8k_calc")
  res = sec.compute(recs, None, compare.Options(n_boot=20), lambda *a: None)
  ex = res["labels"]["exact"]
  assert ex["one_sided"] and ex["records"] == 3 and ex["right_share"] == 0.0
  assert ex["false_positive"]["value"] == pytest.approx(2 / 3)
  md = "\n".join(sec.markdown(res))
  assert "gsm8k_calc: prefixes the one-sided check finds wrong | 3" in md
  with pytest.raises(ValueError, match="gsm8k_calc"):
    label_quality.section(exact="gsm8k")


def test_the_rule_critic_names_the_first_false_calculation(tmp_path):
  """prm_jax.evaluate --critic=gsm8k_calc on a hand-made set: a correct solution (kept), a
  false calculation at step 1 (found), a copied number gone wrong (missed: its arithmetic
  holds), a false calculation at step 2 after a correct one (found, at 2)."""
  from prm_jax import evaluate
  items = [dict(problem="a", steps=["2 * 3 = 6 eggs.", "6 + 1 = 7."], label=-1),
           dict(problem="b", steps=["2 * 3 = 6 eggs.", "6 + 1 = 8."], label=1,
                error_kind="arithmetic"),
           dict(problem="c", steps=["2 * 3 = 6 eggs.", "5 + 1 = 6."], label=1,
                error_kind="copy"),
           dict(problem="d", steps=["1 + 1 = 2.", "2 * 2 = 4.", "4 * 3 = 11."], label=2,
                error_kind="arithmetic")]
  path = tmp_path / "hand.jsonl"
  path.write_text("".join(json.dumps(it) + "\n" for it in items))
  res = evaluate.main(["--critic=gsm8k_calc", f"--data={path}"])
  sub = res["subsets"]["hand"]
  assert (sub["acc_err"], sub["acc_cor"]) == (pytest.approx(2 / 3), 1.0)
  assert sub["f1"] == pytest.approx(2 * (2 / 3) / (1 + 2 / 3))
  kinds = sub["by_error_kind"]
  assert (kinds["arithmetic"]["acc_err"], kinds["arithmetic"]["f1"]) == (1.0, 1.0)
  assert (kinds["copy"]["acc_err"], kinds["copy"]["erroneous"], kinds["copy"]["correct"]) == \
      (0.0, 1, 1)


def test_with_critic_predicts_the_earlier_error():
  """The rule critic's flagged step scores 0: the predicted first error (any threshold) is the
  earlier of the PRM's and the critic's; -1 (nothing flagged) leaves the scores as they are."""
  from prm_jax import evaluate
  prm = [[0.9, 0.2, 0.9], [0.9, 0.9, 0.1], [0.8, 0.7], [0.3]]
  flagged = [2, 0, -1, 0]
  got = evaluate.with_critic(prm, flagged)
  assert got == [[0.9, 0.2, 0.0], [0.0, 0.9, 0.1], [0.8, 0.7], [0.0]]
  assert [evaluate.predict_first_error(s, 0.5) for s in got] == [1, 0, -1, 0]
  assert prm[1] == [0.9, 0.9, 0.1]                  # the input is not modified


def test_critic_parts_score_each_part_and_the_gain():
  """Official-protocol scores of the PRM alone, the critic alone and both, by hand: gold first
  errors [1, 0, -1, -1]; the PRM finds item 0 and flags item 3 (a correct one), the critic finds
  item 1; combined, both errors are found and item 3 is still flagged."""
  from prm_jax import evaluate
  prm = [[0.9, 0.2], [0.9, 0.9], [0.8, 0.7], [0.9, 0.1]]
  parts = evaluate.critic_parts(prm, [-1, 0, -1, -1], [1, 0, -1, -1], 0.5, n_boot=200)
  assert (parts["prm"]["acc_err"], parts["prm"]["acc_cor"]) == (0.5, 0.5)
  assert (parts["critic"]["acc_err"], parts["critic"]["acc_cor"]) == (0.5, 1.0)
  assert (parts["combined"]["acc_err"], parts["combined"]["acc_cor"]) == (1.0, 0.5)
  gain = parts["combined_minus_prm_f1"]
  assert gain["value"] == pytest.approx(2 / 3 - 0.5)
  assert gain["lo"] <= gain["value"] <= gain["hi"] and gain["n"] == 4
  assert parts["combined_minus_critic_f1"]["value"] == pytest.approx(2 / 3 - 2 / 3)
