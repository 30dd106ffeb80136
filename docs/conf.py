"""Sphinx configuration of the deepinv-ei documentation.

Build with ``make docs`` (HTML in ``docs/_build/html``). The build needs no network: MathJax is
served from the build's own ``_static`` folder (``sphinx-mathjax-offline``), and the intersphinx
inventories of deepinv and ODL are written from the installed packages (``_ext/offline_inventory``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# This tree's package first (also for the examples' subprocesses), then the local extensions.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402
from offline_inventory import write_inventories  # noqa: E402

import deepinv_ei  # noqa: E402

# The gallery's networks are tiny: one torch thread is as fast, and on a machine whose cores are
# busy with other work, torch's other threads would spin-wait and slow the examples many times.
torch.set_num_threads(1)

# -- Project -----------------------------------------------------------------------------------
project = "deepinv-ei"
author = "deepinv-ei contributors"
copyright = "deepinv-ei contributors"
release = version = deepinv_ei.__version__

# -- General -----------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
    "sphinx-mathjax-offline",  # copies MathJax 3 into _static/mathjax and points mathjax_path at it
]
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
default_role = "code"  # single backticks: inline code, as in the Markdown pages
add_module_names = False
pygments_style = "sphinx"

# -- Markdown pages (MyST) ---------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# `<!-- not-run -->` comments in the pages mark blocks tests/test_docs.py skips; nothing to render.

# -- API reference -----------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
autoclass_content = "class"

# -- Cross-links to deepinv and ODL, offline -------------------------------------------------
# The inventories are written from the installed packages at each build; no download.
intersphinx_mapping = write_inventories(DOCS / "_build" / "inventories")
intersphinx_timeout = 1

# -- Examples gallery --------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "gallery_order.ExampleOrder",
    "image_scrapers": ("matplotlib",),
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("deepinv_ei",),
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 0,
    "matplotlib_animations": False,
    # The execution-time pages load a table library from a CDN; each example prints its time.
    "write_computation_times": False,
}

# -- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"  # deepinv's theme
html_title = f"deepinv-ei {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 4,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc", "sg_download_links"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# The user-guide pages (top level) have no sub-pages: no empty left sidebar there.
html_sidebars = {"*": []}

# -- Math --------------------------------------------------------------------------------------
mathjax_path = "mathjax/tex-chtml.js"  # in _static, copied there by sphinx-mathjax-offline
mathjax3_config = {"tex": {"macros": {"rank": r"\operatorname{rank}"}}}


# -- Docstrings of re-exported constants -------------------------------------------------------
def _constant_doc(app, what, name, obj, options, lines):
    """Give a constant re-exported by a package the ``#:`` comment of its defining module.

    autodoc reads ``#:`` comments only in the module it documents; for a constant imported into
    a package's ``__init__`` it would fall back to the docstring of the value's type (``dict``).
    """
    if what not in ("data", "attribute") or not lines:
        return
    if "\n".join(lines).strip() != (type(obj).__doc__ or "").strip():
        return
    from sphinx.pycode import ModuleAnalyzer

    short = name.rsplit(".", 1)[-1]
    doc: list[str] = []
    for modname, module in sorted(sys.modules.items()):
        if not modname.startswith("deepinv_ei.") or getattr(module, short, None) is not obj:
            continue
        try:
            found = ModuleAnalyzer.for_module(modname).find_attr_docs().get(("", short))
        except Exception:  # a compiled or source-less module
            continue
        if found:
            doc = list(found)
            break
    lines[:] = doc


def setup(app):
    app.connect("autodoc-process-docstring", _constant_doc)
