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
