"""The LLM recommender and simulator of a finished `crs_jax.main` run, loaded from its workdir
(`serving.json`: base checkpoint, vocabulary, BOS, input length, catalogue), for the chat page
and other tools."""

from __future__ import annotations

import os

from crs_jax import data, llm, sampler_model
from crs_jax import text as text_lib
from mode_jax import serve
from mode_jax.atomic_io import read_json, write_json_atomic
from mode_jax.data import tasks

FILE = "serving.json"


def write_serving_spec(workdir: str, config, base_dir: str) -> None:
  """Writes the serving spec (base, adapter, vocabulary, catalogue) the chat page loads."""
  c = config.data.crs
  write_json_atomic(os.path.join(workdir, FILE), {
      "base": base_dir, "adapter": os.path.join(workdir, "adapter_train", "adapter"),
      "task_ids": os.path.join(workdir, "adapter_train"),
      "vocab_kind": config.vocab.kind, "vocab_path": config.vocab.path,
      "bos_id": config.data.bos_id, "inputs_len": config.data.inputs_len,
      "catalogue_size": c.catalogue_size, "catalogue_seed": c.catalogue_seed})


def load_llm_components(workdir: str):
  """(LLMRecommender, LLMSimulator, catalogue) of the run in `workdir`."""
  path = os.path.join(workdir, FILE)
  spec = read_json(path, FileNotFoundError)
  table = tasks.TaskIdTable.load_or_create(spec["task_ids"], [data.task_name(t) for t in
                                                               text_lib.TASKS])
  bos = spec["bos_id"] if spec["bos_id"] >= 0 else None
  tokenizer = spec["vocab_kind"] + (f":{spec['vocab_path']}" if spec["vocab_path"] else "")
  local = serve.load(spec["base"], adapter=spec["adapter"], tokenizer=tokenizer, name="crs",
                     bos_id=bos, max_prompt_tokens=spec["inputs_len"] - (bos is not None))
  model = sampler_model.TaskTextModel(local, table)
  cat = data.make_catalogue(spec["catalogue_size"], spec["catalogue_seed"])
  return llm.LLMRecommender(model, cat), llm.LLMSimulator(model), cat
