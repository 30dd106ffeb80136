"""Every ```python block in docs/*.md runs (the blocks of one page in order, as one script).

A page opts a block out with an HTML comment ``<!-- not-run -->`` on the line before it
(for commands that need a GPU or a real dataset).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
_BLOCK = re.compile(r"(<!-- not-run -->\s*\n)?```python\n(.*?)```", re.S)


def page_script(page: Path) -> str:
    return "\n".join(m.group(2) for m in _BLOCK.finditer(page.read_text()) if not m.group(1))


PAGES = sorted(p for p in DOCS.glob("*.md") if page_script(p).strip())


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_doc_page_examples_run(page: Path, tmp_path: Path):
    script = tmp_path / "example.py"
    script.write_text("import matplotlib\nmatplotlib.use('Agg')\n" + page_script(page))
    env = dict(os.environ, PYTHONPATH=str(DOCS.parent))
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"{page.name} example failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


# --- The Sphinx API reference lists every public name --------------------------------------

API = DOCS / "api"


def _public_modules() -> list[str]:
    """Every module of deepinv_ei with an ``__all__`` (private ``_x`` modules excluded)."""
    import importlib
    import pkgutil

    import deepinv_ei

    names = ["deepinv_ei"]
    for info in pkgutil.walk_packages(deepinv_ei.__path__, "deepinv_ei."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return [n for n in names if hasattr(importlib.import_module(n), "__all__")]


def documented_names() -> set[str]:
    """Fully qualified names the reST sources of docs/api document (autosummary, auto*)."""
    names = set()
    for page in API.glob("*.rst"):
        module, in_autosummary = None, False
        for line in page.read_text().splitlines():
            m = re.match(r"\.\. (automodule|currentmodule):: (\S+)", line)
            if m:
                module = m.group(2)
                names.add(module)
            m = re.match(r"\.\. auto(?:class|function|data|exception):: (\S+)", line)
            if m:
                names.add(m.group(1))
            if line.startswith(".. autosummary::"):
                in_autosummary = True
            elif line and not line.startswith(" "):
                in_autosummary = False
            m = re.match(r"   ~?([A-Za-z_][\w.]*)$", line)
            if m and in_autosummary and module:
                names.add(f"{module}.{m.group(1)}")
    return names


def _resolve(full: str):
    import importlib

    module, _, attr = full.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        return None


def test_api_reference_lists_every_public_name():
    import importlib

    documented = documented_names()
    by_short_name: dict[str, list] = {}
    for full in documented:
        by_short_name.setdefault(full.rpartition(".")[2], []).append(_resolve(full))
    missing = []
    for modname in _public_modules():
        module = importlib.import_module(modname)
        for name in module.__all__:
            full = f"{modname}.{name}"
            obj = getattr(module, name)
            # A name re-exported from another documented module counts: same name, same object.
            reexported = any(other is obj for other in by_short_name.get(name, []))
            if full not in documented and not reexported:
                missing.append(full)
    assert not missing, (
        "public names missing from the API reference (add them to an autosummary list in "
        f"docs/api/<module>.rst): {sorted(missing)}"
    )


def test_api_reference_lists_only_importable_names():
    import importlib

    stale = []
    for full in sorted(documented_names()):
        try:
            importlib.import_module(full)
            continue
        except ImportError:
            pass
        if _resolve(full) is None and full != "deepinv_ei.__version__":
            stale.append(full)
    assert not stale, f"docs/api names that do not exist: {stale}"
