"""BUILD stays consistent with the tree (Bazel itself cannot run on these offline machines).

The BUILD file is evaluated as Python (Starlark is a Python subset) with `glob`, `load`,
`package` and the rule functions stubbed to record targets. Checked:
- every Python file under mode_jax/, prm_jax/, crs_jax/, configs/ and tests/ is in the srcs of exactly
  one py_library / py_test;
- every module with `if __name__ == "__main__"` is the `main` of exactly one py_binary, which
  lists it in srcs and depends on the library that owns it;
- every project-internal import (mode_jax.*, prm_jax.*, configs.*, tests' helpers), including
  imports inside functions, resolves to a file whose owning target is the importing target or
  in its transitive deps;
- every "//:name" / ":name" dep names a defined target.
"""

import ast
import os
import re

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PACKAGES = ("mode_jax", "prm_jax", "crs_jax", "benchmarks", "configs", "tests")
SKIP_DIRS = {".venv", "runs", "build", "dist", "__pycache__", ".git", ".pytest_cache"}


def _tree_files():
  out = []
  for d, dirs, files in os.walk(ROOT):
    dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.startswith(".")
               and not x.endswith(".egg-info")]
    for f in files:
      out.append(os.path.relpath(os.path.join(d, f), ROOT).replace(os.sep, "/"))
  return sorted(out)


def _glob_regex(pattern: str):
  parts, i = [], 0
  while i < len(pattern):
    if pattern.startswith("**/", i):
      parts.append("(?:.*/)?")
      i += 3
    elif pattern.startswith("**", i):
      parts.append(".*")
      i += 2
    elif pattern[i] == "*":
      parts.append("[^/]*")
      i += 1
    else:
      parts.append(re.escape(pattern[i]))
      i += 1
  return re.compile("^" + "".join(parts) + "$")


def evaluate_build(path=os.path.join(ROOT, "BUILD")):
  files = _tree_files()
  targets = {}

  def rule(kind):
    def record(name, **kw):
      if name in targets:
        raise ValueError(f"BUILD: target {name!r} defined twice")
      targets[name] = dict(kw, kind=kind, name=name)
    return record

  def glob(include, exclude=()):
    inc = [_glob_regex(p) for p in include]
    exc = [_glob_regex(p) for p in exclude]
    return [f for f in files if any(r.match(f) for r in inc) and not any(r.match(f) for r in exc)]

  env = {"load": lambda *a, **k: None, "package": lambda **k: None, "glob": glob,
         "py_library": rule("py_library"), "py_test": rule("py_test"),
         "py_binary": rule("py_binary")}
  with open(path) as f:
    exec(compile(f.read(), path, "exec"), env)     # noqa: S102 (our own BUILD file)
  return targets, files


def _imports(path):
  """Project-internal module names imported anywhere in the file (incl. function bodies)."""
  with open(os.path.join(ROOT, path)) as f:
    tree = ast.parse(f.read(), path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names.add(node.module)
      names.update(f"{node.module}.{a.name}" for a in node.names)
  return {n for n in names if n.split(".")[0] in ("mode_jax", "prm_jax", "crs_jax", "benchmarks", "configs",
                                                  "conftest",
                                                  "trainer_harness", "distributed_worker")}


def _module_file(name, files):
  """The file a dotted module name resolves to (None for attributes that are not modules)."""
  base = name.replace(".", "/")
  for cand in (base + ".py", base + "/__init__.py", "tests/" + base + ".py",
               "tests/train/" + base + ".py"):
    if cand in files:
      return cand
  return None


@pytest.fixture(scope="module")
def build():
  return evaluate_build()


def _label(dep):
  return dep[3:] if dep.startswith("//:") else dep[1:] if dep.startswith(":") else None


def test_every_python_file_in_exactly_one_library_or_test(build):
  targets, files = build
  owners = {}
  for t in targets.values():
    if t["kind"] in ("py_library", "py_test"):
      for s in t.get("srcs", []):
        owners.setdefault(s, []).append(t["name"])
  py = [f for f in files if f.endswith(".py") and f.split("/")[0] in PACKAGES]
  assert py
  missing = [f for f in py if f not in owners]
  twice = {f: o for f, o in owners.items() if len(o) > 1}
  assert not missing, f"not in any py_library / py_test: {missing}"
  assert not twice, f"in more than one target: {twice}"
  assert all(t["srcs"] for t in targets.values() if t["kind"] == "py_test")


def test_entry_points_have_one_binary(build):
  targets, files = build
  owner = {s: t["name"] for t in targets.values() if t["kind"] == "py_library"
           for s in t.get("srcs", [])}
  mains = {}
  for t in targets.values():
    if t["kind"] == "py_binary":
      assert t["main"] in t["srcs"], t["name"]
      assert ":" + owner[t["main"]] in t["deps"], f"{t['name']} must depend on its main's library"
      mains.setdefault(t["main"], []).append(t["name"])
  entry = []
  for f in files:
    if f.endswith(".py") and f.split("/")[0] in ("mode_jax", "prm_jax", "crs_jax", "benchmarks"):
      with open(os.path.join(ROOT, f)) as fh:
        if re.search(r'^if __name__ == "__main__":', fh.read(), re.M):
          entry.append(f)
  assert entry
  assert sorted(mains) == sorted(entry), (sorted(set(entry) - set(mains)),
                                          sorted(set(mains) - set(entry)))
  assert all(len(v) == 1 for v in mains.values()), mains


def dep_problems(targets, files):
  """Unknown deps and project-internal imports not covered by the importing target's deps."""
  problems = [f"{t['name']}: unknown dep {d}" for t in targets.values()
              for d in t.get("deps", []) if _label(d) is not None and _label(d) not in targets]
  owner = {s: t["name"] for t in targets.values() if t["kind"] in ("py_library", "py_test")
           for s in t.get("srcs", [])}

  def closure(name, seen):
    if name not in seen and name in targets:
      seen.add(name)
      for d in targets[name].get("deps", []):
        if _label(d):
          closure(_label(d), seen)
    return seen

  for t in targets.values():
    if t["kind"] == "py_binary":
      continue
    reach = closure(t["name"], set())
    for src in t.get("srcs", []):
      for mod in sorted(_imports(src)):
        f = _module_file(mod, files)
        if f is not None and owner.get(f) not in reach:
          problems.append(f"{t['name']}: {src} imports {mod} ({f}, in :{owner.get(f)})")
  return problems


def test_deps_exist_and_cover_internal_imports(build):
  targets, files = build
  problems = dep_problems(targets, files)
  assert not problems, "\n".join(problems)


def test_checker_catches_a_missing_dep(build):
  targets, files = build
  broken = {k: dict(v) for k, v in targets.items()}
  broken["train"]["deps"] = [d for d in broken["train"]["deps"] if d not in (":data", ":model",
                                                                            ":pretrained")]
  broken["prm"]["deps"] = broken["prm"]["deps"] + [":nonexistent"]
  problems = dep_problems(broken, files)
  assert any(p.startswith("train: ") and "imports mode_jax.data" in p for p in problems)
  assert "prm: unknown dep :nonexistent" in problems
