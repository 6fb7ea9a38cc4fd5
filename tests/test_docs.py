"""README.md and docs/*.md: every relative link and image resolves (file, and heading anchor
when given), every `python -m X` they name is a module that exists, and every docs page is linked
from the README."""

import importlib.util
import os
import re

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PROJECT = ("mode_jax", "prm_jax", "crs_jax", "benchmarks")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
MODULE = re.compile(r"python3? -m ([A-Za-z_][\w.]*)")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def _pages():
  docs = os.path.join(ROOT, "docs")
  return ["README.md"] + sorted(f"docs/{f}" for f in os.listdir(docs) if f.endswith(".md"))


def _read(rel):
  with open(os.path.join(ROOT, rel)) as f:
    return f.read()


def slug(heading: str) -> str:
  """GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces -> '-'."""
  text = heading.strip().lstrip("#").strip().lower()
  text = re.sub(r"[^\w\- ]", "", text)
  return text.replace(" ", "-")


def anchors(text: str) -> set:
  out, fenced = set(), False
  for line in text.splitlines():
    if line.startswith("```"):
      fenced = not fenced
    elif not fenced and line.startswith("#"):
      out.add(slug(line.lstrip("#")))
  return out


def module_exists(name: str) -> bool:
  parts = name.split(".")
  if parts[0] in PROJECT:
    base = os.path.join(ROOT, *parts)
    return os.path.exists(base + ".py") or os.path.exists(os.path.join(base, "__main__.py"))
  return importlib.util.find_spec(parts[0]) is not None


def link_problems(rel: str, text: str) -> list:
  problems = []
  for target in LINK.findall(text):
    if re.match(r"^[a-z]+:", target):        # http:, https:, mailto:
      continue
    path, _, anchor = target.partition("#")
    dest = os.path.normpath(os.path.join(ROOT, os.path.dirname(rel), path)) if path else \
        os.path.join(ROOT, rel)
    if not os.path.exists(dest):
      problems.append(f"{rel}: link {target!r}: {os.path.relpath(dest, ROOT)} does not exist")
    elif anchor and dest.endswith(".md") and anchor not in anchors(_read(dest)):
      problems.append(f"{rel}: link {target!r}: no heading with anchor #{anchor}")
  for target in IMAGE.findall(text):          # figures: committed files, not runs/ outputs
    dest = os.path.normpath(os.path.join(ROOT, os.path.dirname(rel), target))
    if not re.match(r"^[a-z]+:", target) and not os.path.exists(dest):
      problems.append(f"{rel}: image {target!r}: {os.path.relpath(dest, ROOT)} does not exist")
  return problems


@pytest.mark.parametrize("rel", _pages())
def test_relative_links_resolve(rel):
  problems = link_problems(rel, _read(rel))
  assert not problems, "\n".join(problems)


@pytest.mark.parametrize("rel", _pages())
def test_python_m_modules_exist(rel):
  missing = sorted({m for m in MODULE.findall(_read(rel)) if not module_exists(m)})
  assert not missing, f"{rel} names modules that do not exist: {missing}"


def test_every_docs_page_is_linked_from_the_readme():
  readme = _read("README.md")
  linked = {os.path.normpath(t.partition("#")[0]) for t in LINK.findall(readme)}
  unlinked = [p for p in _pages()[1:] if os.path.normpath(p) not in linked]
  assert not unlinked, f"docs pages the README does not link: {unlinked}"


def test_the_checks_catch_a_broken_link_a_bad_anchor_and_a_missing_module():
  text = ("[a](docs/nope.md) [b](docs/layout.md#no-such-heading) [c](docs/layout.md) "
          "[d](https://example.com/x) [e](#two-commands) ![f](docs/figures/nope.png)")
  problems = link_problems("README.md", text)
  assert len(problems) == 3 and "nope.md" in problems[0] and "no-such-heading" in problems[1]
  assert "image 'docs/figures/nope.png'" in problems[2]
  assert slug("## Pallas kernels (`benchmarks.kernels`): GPU / TPU") == \
      "pallas-kernels-benchmarkskernels-gpu--tpu"
  assert module_exists("mode_jax.main") and module_exists("benchmarks.train_step")
  assert not module_exists("mode_jax.model.bench_sampling") and not module_exists("nosuchpkg")


def table_cells(line: str) -> list:
  """A markdown table row's cells: split on '|' outside code spans and not escaped ('\\|')."""
  out, cur, tick, prev = [], "", False, ""
  for ch in line.strip():
    if ch == "`":
      tick = not tick
    if ch == "|" and not tick and prev != "\\":
      out.append(cur)
      cur = ""
    else:
      cur += ch
    prev = ch
  out.append(cur)
  return out[1:-1]


def table_problems(rel: str, text: str) -> list:
  """Rows with another number of cells than their table's header (two rows joined on one line,
  a lost cell): GitHub renders those wrongly or drops the extra cells."""
  lines, problems, i = text.splitlines(), [], 0
  while i < len(lines):
    if (lines[i].startswith("|") and i + 1 < len(lines)
        and re.match(r"^\|[-:| ]+\|\s*$", lines[i + 1])):
      n, j = len(table_cells(lines[i])), i + 2
      while j < len(lines) and lines[j].startswith("|"):
        if len(table_cells(lines[j])) != n:
          problems.append(f"{rel}:{j + 1}: {len(table_cells(lines[j]))} cells, header has {n}")
        j += 1
      i = j
    else:
      i += 1
  return problems


@pytest.mark.parametrize("rel", _pages())
def test_table_rows_have_their_headers_cell_count(rel):
  problems = table_problems(rel, _read(rel))
  assert not problems, "\n".join(problems)


def test_the_table_check_catches_joined_rows_and_reads_escaped_and_code_pipes():
  ok = "| a | b |\n|---|---|\n| `x | y` | P(1 \\| 0) |\n"
  assert table_problems("t.md", ok) == []
  joined = "| a | b |\n|---|---|\n| 1 | 2 || 3 | 4 |\n"
  assert table_problems("t.md", joined) == ["t.md:3: 5 cells, header has 2"]
