r"""The output folder of a reproduction run: one run per folder, merged results, strict JSON.

A folder ``--out`` holds the outputs of one *run*, identified by :func:`run_identity` (profile,
seed, data folder, ``--set`` overrides) and recorded in ``run.json``. Runs with the same
identity share the folder: ``results.json`` is merged task by task and method by method (a run
of ``--task inpainting`` keeps the ``ct`` results), and a method trained again replaces only its
own entry, figure input and checkpoint. A run with another identity is refused
(:class:`OutputConflict`) unless ``overwrite=True``, which first deletes the earlier run's
outputs (only the files this program writes). Nothing else in the folder is touched.

On start, under an exclusive lock of the folder (a second run writing to it is refused), the
temporary files left by writes that were killed are deleted
(:func:`deepinv_ei.utils.clean_orphan_temp_files`).

``results.json`` is strict JSON: a NaN or infinite number (a diverged training) is written as
``null`` and its place listed in the entry's ``"non_finite"`` (:func:`flag_non_finite`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from deepinv_ei.training import TRAINER_FILES
from deepinv_ei.utils import (
    atomic_write_json,
    clean_orphan_temp_files,
    non_finite_paths,
    strict_json,
)

RESULTS = "results.json"
RUN_FILE = "run.json"
LOCK_FILE = ".lock"
#: What a run writes in its folder (``--overwrite`` deletes these and nothing else).
OUTPUT_FILES = (RESULTS, RUN_FILE, "results.md")
OUTPUT_GLOBS = ("fig1_*.png", "curves_*.png", "split_*.png")
OUTPUT_DIRS = ("recon", "checkpoints")
#: Names written inside OUTPUT_DIRS (reconstructions, checkpoints, final models, the trainer's
#: histories and curves).
WRITTEN_GLOBS = ("*.pt", "*.pth", "*.pth.tar", *TRAINER_FILES)
_IDENTITY_KEYS = ("profile", "seed", "data_dir", "overrides")


class OutputConflict(ValueError):
    """``--out`` holds another run (or is being written by another process)."""


def run_identity(profile: str, seed: int, data_dir: str | None, overrides: dict) -> dict:
    """What makes two runs' results comparable: profile, seed, data folder, overrides."""
    return {"profile": profile, "seed": seed, "data_dir": data_dir, "overrides": dict(overrides)}


def read_json(path: Path, what: str = "results file") -> Any:
    """``path`` parsed as JSON, or a :class:`ValueError` naming it and what to do."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read this {what} ({err})") from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: this {what} is not valid JSON (truncated or edited by hand?): {err.msg} at "
            f"line {err.lineno}, column {err.colno} of {len(text)} characters. Restore it, or "
            "move it away and run again (pass --overwrite to replace the run in this folder)"
        ) from None


def _stored_identity(out: Path) -> tuple[dict | None, Path | None]:
    for name in (RUN_FILE, RESULTS):  # run.json first; results.json of older versions
        path = out / name
        if path.exists():
            data = read_json(path, "run record" if name == RUN_FILE else "results file")
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected a JSON object, found {type(data).__name__}")
            return {k: data.get(k, {} if k == "overrides" else None) for k in _IDENTITY_KEYS}, path
    return None, None


def check_output(out: Path, identity: dict, resume: bool, overwrite: bool) -> dict | None:
    """The identity of the run recorded in ``out`` (``None`` if none) when this run may use
    the folder: it is the same run, or ``overwrite``; an :class:`OutputConflict` naming the
    differences otherwise. Reads only. (``resume`` with ``overwrite`` is refused by the run's
    settings.)"""
    stored, path = _stored_identity(out)
    if stored is None or stored == identity or overwrite:
        return stored
    diff = ", ".join(
        f"{k}={stored[k]!r} there, {identity[k]!r} here"
        for k in _IDENTITY_KEYS
        if stored[k] != identity[k]
    )
    action = "--resume" if resume else "this run"
    raise OutputConflict(
        f"{action}: {out} holds another run ({path.name}: {diff}). Its results are kept: "
        "choose another --out, use the same settings, or pass --overwrite to delete that "
        "run's outputs first"
    )


def remove_outputs(out: Path) -> list[Path]:
    """Delete what a run writes in ``out`` (:data:`OUTPUT_FILES`, the figures,
    :data:`OUTPUT_DIRS`); nothing else."""
    removed = [out / n for n in OUTPUT_FILES if (out / n).is_file()]
    removed += [p for g in OUTPUT_GLOBS for p in sorted(out.glob(g)) if p.is_file()]
    for p in removed:
        p.unlink()
    for d in OUTPUT_DIRS:
        if (out / d).is_dir() and not (out / d).is_symlink():
            shutil.rmtree(out / d)
            removed.append(out / d)
    return removed


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock of ``out`` (``fcntl.flock`` on ``out/.lock``; released by the
    system if the process dies). A second holder gets an :class:`OutputConflict`."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputConflict(
                f"{out} is being written by another run (it holds {out / LOCK_FILE}); "
                "wait for it to finish or choose another --out"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def claim_output(
    out: Path,
    identity: dict,
    resume: bool,
    overwrite: bool,
    say: Callable[[str], Any] = print,
) -> dict:
    """Prepare ``out`` for this run, once, under :func:`output_lock`: refuse another run's
    folder (:func:`check_output`), delete the earlier run's outputs if ``overwrite``, delete
    orphan temporary files, record ``run.json``; returns the earlier results of this run
    (``{}`` if none, NaN restored where ``results.json`` has ``null`` for one)."""
    if check_output(out, identity, resume, overwrite) is not None and overwrite:
        removed = remove_outputs(out)
        names = ", ".join(p.name for p in removed)
        say(f"--overwrite: deleted the earlier run's outputs in {out}: {names}")
    orphans = clean_orphan_temp_files(out, OUTPUT_FILES + OUTPUT_GLOBS + WRITTEN_GLOBS)
    if orphans:
        say(f"deleted {len(orphans)} temporary file(s) of interrupted writes in {out}")
    previous = {}
    if (out / RESULTS).exists():
        previous = read_json(out / RESULTS)
        restore_non_finite(previous)
    atomic_write_json(out / RUN_FILE, identity)
    return previous


# ------------------------------------------------------------------------ non-finite numbers
def flag_non_finite(entry: dict) -> list[str]:
    """List in ``entry["non_finite"]`` where ``entry`` holds NaN or infinite numbers (kept in
    memory; written as ``null``); returns that list (empty: the key is removed)."""
    entry.pop("non_finite", None)
    bad = non_finite_paths(entry)
    if bad:
        entry["non_finite"] = bad
    return bad


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def restore_non_finite(results: dict) -> None:
    """Put NaN back where an entry's ``"non_finite"`` list says ``null`` stands for one (so that
    tables read from an earlier ``results.json`` print ``nan``)."""
    for task in results.values():
        if not isinstance(task, dict):
            continue
        for entry in task.values():
            if not isinstance(entry, dict):
                continue
            for path in entry.get("non_finite", []):
                steps = [int(i) if i else k for k, i in _STEP.findall(str(path))]
                node: Any = entry
                with contextlib.suppress(LookupError, TypeError):
                    for s in steps[:-1]:
                        node = node[s]
                    if node[steps[-1]] is None:
                        node[steps[-1]] = math.nan


def write_results(out: Path, results: dict) -> Path:
    """``results.json``, strict JSON (:func:`deepinv_ei.utils.strict_json`), written atomically."""
    return atomic_write_json(out / RESULTS, strict_json(results))
