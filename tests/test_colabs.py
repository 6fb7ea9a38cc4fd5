"""Every notebook in colabs/ runs top to bottom (nbclient, a fresh kernel, CPU, the small
defaults of its parameters cell), so none of them rots. Errors name the notebook and cell."""

import os
import re

import nbformat
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
COLABS = os.path.join(ROOT, "colabs")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOTEBOOKS = sorted(f for f in os.listdir(COLABS) if f.endswith(".ipynb"))


def test_there_are_notebooks():
  assert {"mode_quickstart.ipynb", "load_checkpoint_and_adapt.ipynb",
          "omegaprm_walkthrough.ipynb"} <= set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_conventions(name):
  nb = nbformat.read(os.path.join(COLABS, name), as_version=4)
  assert "colab-badge.svg" in nb.cells[0].source and name in nb.cells[0].source
  assert any("google.colab" in c.source and "pip" in c.source for c in nb.cells
             if c.cell_type == "code"), "an install cell"
  assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), "a parameters cell"
  assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
      "commit notebooks without outputs"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name, tmp_path):
  from nbclient import NotebookClient
  from nbclient.exceptions import CellExecutionError
  nb = nbformat.read(os.path.join(COLABS, name), as_version=4)
  try:
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": COLABS}}).execute()
  except CellExecutionError as e:
    plain = ANSI.sub("", str(e))
    pytest.fail(f"colabs/{name}: {plain[-3000:]}")
  nbformat.write(nb, str(tmp_path / name))          # the executed copy, for inspection
  errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
  assert not errors
