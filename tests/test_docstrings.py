"""The public surface of mode_jax / prm_jax / crs_jax is documented: at least 90% of public
functions and methods (names without a leading underscore, in public classes) have a
docstring, read from the source with `ast`."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("mode_jax", "prm_jax", "crs_jax")


def public_functions(path: pathlib.Path) -> list[tuple[str, bool]]:
  """(qualified name, has a docstring) of the module's public functions and methods."""
  out = []

  def visit(body, prefix):
    for n in body:
      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_"):
        out.append((prefix + n.name, bool(ast.get_docstring(n))))
      elif isinstance(n, ast.ClassDef) and not n.name.startswith("_"):
        visit(n.body, prefix + n.name + ".")
  visit(ast.parse(path.read_text()).body, "")
  return out


def test_the_counter_sees_functions_methods_and_skips_private(tmp_path):
  p = tmp_path / "m.py"
  p.write_text('def a():\n  """Doc."""\n\ndef b():\n  pass\n\ndef _c():\n  pass\n\n'
               'class K:\n  def m(self):\n    pass\n\nclass _H:\n  def n(self):\n    pass\n')
  assert public_functions(p) == [("a", True), ("b", False), ("K.m", False)]


def test_at_least_90_percent_of_public_functions_have_docstrings():
  rows = [(f"{p.relative_to(ROOT)}:{name}", doc) for pkg in PACKAGES
          for p in sorted((ROOT / pkg).rglob("*.py")) for name, doc in public_functions(p)]
  missing = [name for name, doc in rows if not doc]
  assert len(rows) > 500
  assert len(missing) <= 0.1 * len(rows), (f"{len(missing)} of {len(rows)} public functions "
                                           "lack a docstring:\n" + "\n".join(missing))
