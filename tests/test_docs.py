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
