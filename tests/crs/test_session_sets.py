"""The RecLLM job's session sets: built from the config block, selected by role (not display
name), with file stems a resumed job finds again."""

import ml_collections
import pytest

from crs_jax import catalogue, session_sets

CAT = catalogue.make_catalogue(50, seed=0)


def _scfg(**kw):
  d = dict(num_sessions=4, max_turns=3, batch_size=0, profile="given", retriever="search",
           ranking="generate", variants=(), baselines=("random", "teacher"), systems=())
  d.update(kw)
  return ml_collections.ConfigDict(d)


def test_sets_roles_and_stems():
  sets = session_sets.build(_scfg(), model=None, cat=CAT, seed=2000)
  assert [(s.role, s.key) for s in sets] == [
      ("recllm", "search/generate"), ("baseline", "random"), ("baseline", "teacher"),
      ("llm_simulator", ""), ("llm_simulator_forced", "")]
  # the file names of finished runs (a resumed job must find them)
  assert [s.stem for s in sets] == ["RecLLM", "random", "teacher", "teacher_and_LLM_simulator",
                                    "teacher_and_LLM_simulator_forced_intents"]
  forced = session_sets.find(sets, "llm_simulator_forced")
  assert forced.forced("s00003") == forced.forced("s00003") and len(forced.forced("s00003")) == 5
  assert session_sets.find(sets, "baseline", "teacher").name == "teacher"
  assert session_sets.find(sets, "baseline", "oracle") is None


def test_systems_select_by_name_and_recllm_selects_every_variant():
  dense_calls = []
  sets = session_sets.build(_scfg(variants=("search/score",), systems=("RecLLM", "teacher")),
                            model=None, cat=CAT, seed=0, dense=lambda: dense_calls.append(1))
  assert [s.name for s in sets] == ["RecLLM (LLM recommender)",
                                    "RecLLM, search retrieval, score", "teacher"]
  assert not dense_calls                       # no dense variant: no index trained
  with pytest.raises(ValueError, match=r"unknown \['nope'\]"):
    session_sets.build(_scfg(systems=("nope",)), model=None, cat=CAT, seed=0)
  with pytest.raises(ValueError, match="config.sessions.variants: 'dense' is not"):
    session_sets.build(_scfg(variants=("dense",)), model=None, cat=CAT, seed=0)
