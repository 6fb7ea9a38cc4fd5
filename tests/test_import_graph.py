"""The import graph of `mode_jax/`, `prm_jax/` and `crs_jax/` has no cycles, read from the source with `ast`.

Every `import` statement counts, including ones inside functions (a function-level import is a
cycle waiting for the call). `from pkg import name` is an edge to `pkg.name` when that is a
module, else to `pkg`. Importing `a.b.c` is not counted as importing the package `a.b` (its
`__init__` re-exports would otherwise make every package a cycle). Checked at two levels:

- modules: no two modules reach each other;
- units: a unit is a subpackage (`mode_jax.model`) or a top-level module (`prm_jax.evaluate`);
  no two units reach each other, so the dependency direction is readable from the tree;

and `mode_jax` never imports `prm_jax` or `crs_jax`, and the two applications never import each
other; model, adapter and kernel modules import no seqio,
TensorFlow or ml_collections (they run on a bare accelerator VM); no library module imports
torch or transformers (benchmarks and tests may).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("mode_jax", "prm_jax", "crs_jax")


def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
  parts = list(path.relative_to(root).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def _modules(root: pathlib.Path) -> dict[str, pathlib.Path]:
  out = {}
  for pkg in PACKAGES:
    for path in sorted((root / pkg).rglob("*.py")):
      out[_module_name(path, root)] = path
  return out


def _imports(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
  """Every project module `name` imports (anywhere in the file), plus external top-level names."""
  tree = ast.parse(path.read_text(), filename=str(path))
  is_pkg = path.name == "__init__.py"
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        mod = ".".join(base + ([node.module] if node.module else []))
      else:
        mod = node.module
      for alias in node.names:
        sub = f"{mod}.{alias.name}"
        out.add(sub if sub in known else mod)
  return out


def _graph(root: pathlib.Path = ROOT) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
  """(project edges, all imported names) per module."""
  mods = _modules(root)
  known = set(mods)
  edges, raw = {}, {}
  for name, path in mods.items():
    imported = _imports(name, path, known)
    raw[name] = imported
    edges[name] = {m for m in imported if m in known and m != name}
  return edges, raw


def _unit(module: str) -> str:
  return ".".join(module.split(".")[:2])


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components with more than one node (Tarjan), each sorted."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []
  counter = [0]

  def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on_stack.add(v)
    for w in sorted(edges.get(v, ())):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        comp.append(w)
        if w == v:
          break
      if len(comp) > 1:
        out.append(sorted(comp))

  for v in sorted(edges):
    if v not in index:
      visit(v)
  return out


def _explain(comp: list[str], edges: dict[str, set[str]]) -> str:
  inside = set(comp)
  return "; ".join(f"{a} -> {b}" for a in comp for b in sorted(edges[a] & inside))


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path):
  """The checker itself: a two-module cycle closed by an import inside a function is found."""
  pkg = tmp_path / "mode_jax"
  (pkg / "sub").mkdir(parents=True)
  (pkg / "__init__.py").write_text("")
  (pkg / "sub" / "__init__.py").write_text("")
  (pkg / "sub" / "a.py").write_text("from mode_jax.sub import b\n")
  (pkg / "sub" / "b.py").write_text("def f():\n  from . import a\n  return a\n")
  edges, _ = _graph(tmp_path)
  assert _cycles(edges) == [["mode_jax.sub.a", "mode_jax.sub.b"]]


def test_no_cycle_between_modules():
  edges, _ = _graph()
  found = [_explain(c, edges) for c in _cycles(edges)]
  assert not found, "import cycles between modules:\n" + "\n".join(found)


def test_no_cycle_between_subpackages():
  edges, _ = _graph()
  units = {}
  for a, targets in edges.items():
    units.setdefault(_unit(a), set()).update(_unit(b) for b in targets if _unit(b) != _unit(a))
  found = []
  for comp in _cycles(units):
    inside = set(comp)
    why = [f"{a} -> {b}" for a in sorted(edges) if _unit(a) in inside
           for b in sorted(edges[a]) if _unit(b) in inside and _unit(b) != _unit(a)]
    found.append(" <-> ".join(comp) + ":\n    " + "\n    ".join(why))
  assert not found, "import cycles between subpackages:\n" + "\n".join(found)


@pytest.mark.parametrize("importer,forbidden", [
    ("mode_jax", ("prm_jax", "crs_jax")), ("prm_jax", ("crs_jax",)), ("crs_jax", ("prm_jax",))])
def test_dependency_direction_between_packages(importer, forbidden):
  _, raw = _graph()
  bad = sorted(f"{m} -> {i}" for m, imps in raw.items() if m.split(".")[0] == importer
               for i in imps if i.split(".")[0] in forbidden)
  assert not bad, bad


@pytest.mark.parametrize("prefix,forbidden", [
    (("mode_jax.model", "mode_jax.adapters", "mode_jax.kernels"),
     ("seqio", "tensorflow", "tensorflow_datasets", "ml_collections", "prm_jax", "crs_jax")),
    (PACKAGES, ("torch", "transformers", "peft")),
])
def test_library_modules_do_not_import(prefix, forbidden):
  _, raw = _graph()
  bad = sorted(f"{m} -> {i}" for m, imps in raw.items() if m.startswith(prefix)
               for i in imps if i.split(".")[0] in forbidden)
  assert not bad, bad


def _private_uses(path: pathlib.Path, known: set[str]) -> list[str]:
  """`from project.module import _name` and `alias._name` where `alias` is a project module."""
  tree = ast.parse(path.read_text(), filename=str(path))
  aliases, out = {}, []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for a in node.names:
        if a.name in known:
          aliases[a.asname or a.name.split(".")[0]] = a.name
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
      for a in node.names:
        if a.name.startswith("_"):
          out.append(f"{path.name}:{node.lineno}: from {node.module} import {a.name}")
        elif f"{node.module}.{a.name}" in known:
          aliases[a.asname or a.name] = f"{node.module}.{a.name}"
  for node in ast.walk(tree):
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        and node.value.id in aliases and node.attr.startswith("_")
        and not node.attr.startswith("__")):
      out.append(f"{path.name}:{node.lineno}: {aliases[node.value.id]}.{node.attr}")
  return out


def test_the_private_name_checker_finds_both_forms(tmp_path):
  (tmp_path / "a.py").write_text("from mode_jax.train import jobs\nfrom mode_jax.x import _y\n"
                                 "jobs._helper(1)\njobs.public(2)\n")
  found = _private_uses(tmp_path / "a.py", {"mode_jax.train.jobs"})
  assert found == ["a.py:2: from mode_jax.x import _y", "a.py:3: mode_jax.train.jobs._helper"]


def test_no_library_module_uses_a_private_name_of_another_module():
  """Modules use each other's public surface only (house rule 10); a helper two modules need
  is made public or moved where both can import it."""
  mods = _modules(ROOT)
  bad = [u for name, path in mods.items() for u in _private_uses(path, set(mods))]
  assert not bad, "\n".join(bad)
