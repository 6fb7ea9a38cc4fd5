"""`compare_sets` with an application section: the section's prepare / compute / markdown run,
its keys sit beside the generic ones, and the renderer writes them."""

import os

from mode_jax.dataeval import compare, embed, render


def _items(texts, task):
  return [{"_text": t, "task": task} for t in texts]


def test_a_section_plugs_into_compare_and_render(tmp_path):
  gen = _items([f"the cat {i} sat on mat {i % 3}" for i in range(30)], "a")
  ref = _items([f"a dog {i} ran in park {i % 5}" for i in range(30)], "b")
  calls = []

  def prepare(items, opts):
    calls.append(("prepare", len(items)))
    for it in items:
      it["difficulty"] = "easy" if len(it["_text"]) < 23 else "hard"

  sec = compare.Section(
      name="lengths by task", prepare=prepare,
      compute=lambda g, r, opts, log: {"mine": {"generated": len(g), "reference": len(r)}},
      markdown=lambda res: ["", "## Mine", "", f"{res['mine']['generated']} items"])
  opts = compare.Options(n_boot=8, mauve_seeds=2, max_items=30)
  res = compare.compare_sets(gen, ref, (), opts, embed.HashingEncoder(64), (sec,),
                             log=lambda *a: None)
  assert calls == [("prepare", 30), ("prepare", 30)]
  assert res["mine"] == {"generated": 30, "reference": 30}
  assert res["bias"]["coverage"]["difficulty"]["distinct"] == 2       # derived by `prepare`
  assert res["distribution"]["discriminator_auc"]["value"] > 0.9      # cats vs dogs
  assert set(res["diversity"]) == {"generated", "reference"}
  render.write(res, str(tmp_path), (sec,))
  md = open(os.path.join(tmp_path, "report.md")).read()
  assert "## Diversity" in md and "## Mine" in md and "30 items" in md


def test_the_report_hashing_encoder_sees_numbers_and_symbols():
  """`--encoder=hashing` on arithmetic steps: single digits and operators are tokens (the
  default word pattern gives "7 + 2 = 9" an all-zero row, which the Vendi score rejects)."""
  import numpy as np
  x = embed.get_encoder("hashing:64")(["7 + 2 = 9", "2 * 4 = 8"])
  assert (np.abs(x).sum(1) > 0).all() and not np.allclose(x[0], x[1])
  assert (embed.HashingEncoder(64)(["7 + 2 = 9"]) == 0).all()      # RecLLM's pattern: words
