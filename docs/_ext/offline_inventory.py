"""Intersphinx inventories of deepinv and ODL written from the installed packages.

The documentation build has no network access, so instead of downloading ``objects.inv`` from
deepinv's and ODL's sites, :func:`write_inventories` walks the installed packages and writes an
inventory in Sphinx's format (version 2) that points each public class, function and method at
its page on that site:

- deepinv: ``api/stubs/<public name>.html`` (deepinv's autosummary stubs, one per public name);
- ODL: ``generated/<defining module>.<name>.html`` (ODL's per-module autosummary stubs).

Every object is listed under its public name(s) and under its defining module's path, so that
both ``:class:`deepinv.loss.Loss``` and the base classes autodoc writes
(``deepinv.loss.loss.Loss``) resolve. An object found nowhere gives no link and no warning.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

DEEPINV_URL = "https://deepinv.github.io/deepinv/"
ODL_URL = "https://odlgroup.github.io/odl/"

# The modules of deepinv's API reference (one page per module, one stub per public name). An
# object exported by several is documented under the first: deepinv lists its metrics as
# ``deepinv.loss.metric.PSNR``, so that module comes before ``deepinv.loss``.
DEEPINV_MODULES = (
    "deepinv.datasets",
    "deepinv.distributed",
    "deepinv.loss.metric",
    "deepinv.loss",
    "deepinv.models",
    "deepinv.optim",
    "deepinv.physics",
    "deepinv.sampling",
    "deepinv.training",
    "deepinv.transform",
    "deepinv.unfolded",
    "deepinv.utils",
)


def _public(module) -> Iterator[tuple[str, object]]:
    names = [*getattr(module, "__all__", ()), *(n for n in vars(module) if not n.startswith("_"))]
    for name in dict.fromkeys(names):
        obj = getattr(module, name, None)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            yield name, obj


def _role(obj) -> str:
    return "py:class" if inspect.isclass(obj) else "py:function"


def _methods(cls) -> Iterator[tuple[str, object]]:
    for name, member in vars(cls).items():
        if not name.startswith("_") and (
            inspect.isfunction(member) or isinstance(member, property)
        ):
            yield name, member


def _entries_for(obj, names: Iterable[str], page: str) -> Iterator[tuple[str, str, str]]:
    """(name, role, uri) for ``obj`` under each of ``names``, and its methods, on ``page``."""
    names = list(dict.fromkeys(names))
    anchor = names[0]
    for name in names:
        yield name, _role(obj), f"{page}#{anchor}"
        if inspect.isclass(obj):
            for meth, member in _methods(obj):
                role = "py:property" if isinstance(member, property) else "py:method"
                yield f"{name}.{meth}", role, f"{page}#{anchor}.{meth}"


def deepinv_entries() -> list[tuple[str, str, str]]:
    entries = []
    seen: dict[int, list[str]] = {}
    objects: dict[int, object] = {}
    top = importlib.import_module("deepinv")
    modules = [("deepinv", top)]  # first: deepinv documents deepinv.Trainer at the top level
    for modname in DEEPINV_MODULES:
        try:
            modules.append((modname, importlib.import_module(modname)))
        except ImportError:  # a module of another deepinv version
            continue
    # Aliases such as ``deepinv.metric`` (an attribute naming ``deepinv.loss.metric``): their
    # names resolve too, to the page of the first module above.
    listed = {modname for modname, _ in modules}
    for name, module in list(vars(top).items()):
        alias = f"deepinv.{name}"
        if inspect.ismodule(module) and alias not in listed and not name.startswith("_"):
            if module.__name__.startswith("deepinv."):
                modules.append((alias, module))
    for modname, module in modules:
        for name, obj in _public(module):
            if not getattr(obj, "__module__", "").startswith("deepinv"):
                continue
            seen.setdefault(id(obj), []).append(f"{modname}.{name}")
            objects[id(obj)] = obj
    for key, names in seen.items():
        obj = objects[key]
        public = names[0]
        page = f"api/stubs/{public}.html"
        defining = f"{obj.__module__}.{obj.__qualname__}"
        entries += _entries_for(obj, [public, *names[1:], defining], page)
    for modname, _ in modules:
        entries.append((modname, "py:module", f"api/{modname}.html#module-{modname}"))
    return entries


def odl_entries() -> list[tuple[str, str, str]]:
    odl = importlib.import_module("odl")
    modules = {"odl": odl}
    for info in pkgutil.walk_packages(odl.__path__, "odl."):
        if ".test" in info.name or "contrib" in info.name or "._" in info.name:
            continue
        try:
            modules[info.name] = importlib.import_module(info.name)
        except Exception:  # optional back-ends (CUDA, pyfftw, ...) that are not installed
            continue
    aliases: dict[int, list[str]] = {}
    objects: dict[int, object] = {}
    for modname, module in modules.items():
        for name, obj in _public(module):
            if getattr(obj, "__module__", "").startswith("odl"):
                aliases.setdefault(id(obj), []).append(f"{modname}.{name}")
                objects[id(obj)] = obj
    entries = []
    for key, names in aliases.items():
        obj = objects[key]
        defining = f"{obj.__module__}.{obj.__name__}"
        page = f"generated/{defining}.html"
        names = sorted(names, key=lambda n: (n != defining, len(n)))
        entries += _entries_for(obj, [defining, *names], page)
    for modname in modules:
        entries.append((modname, "py:module", f"{modname}.html#module-{modname}"))
    return entries


def write_inventory(path: Path, project: str, version: str, entries) -> Path:
    """Write ``entries`` (name, role, uri) as a Sphinx version-2 inventory at ``path``."""
    lines = []
    for name, role, uri in sorted(set(entries)):
        # "$" abbreviates a uri ending in the name; "-" means the display name is the name.
        lines.append(f"{name} {role} 1 {uri} -")
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(header.encode() + zlib.compress("\n".join(lines).encode() + b"\n"))
    tmp.replace(path)
    return path


def write_inventories(folder: Path) -> dict[str, tuple[str, str]]:
    """Write deepinv's and ODL's inventories into ``folder``; return an ``intersphinx_mapping``."""
    import deepinv
    import odl

    deepinv_inv = write_inventory(
        folder / "deepinv.inv", "deepinv", deepinv.__version__, deepinv_entries()
    )
    odl_inv = write_inventory(folder / "odl.inv", "odl", odl.__version__, odl_entries())
    return {"deepinv": (DEEPINV_URL, str(deepinv_inv)), "odl": (ODL_URL, str(odl_inv))}
