r"""Training checkpoints: safe loading and the random-number states that make a resume exact.

A checkpoint is a plain dictionary of tensors, numbers, strings and containers, so it loads
with ``torch.load(weights_only=True)``: a crafted file cannot run code while it is read. Beside
the weights and the optimiser it holds the state of every random-number generator the training
draws from (torch's, NumPy's and Python's global ones, CUDA's, and any extra
:class:`torch.Generator`), so a run resumed from it continues with the very numbers the
uninterrupted run would have drawn.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from deepinv_ei.utils import safe_load_torch

#: The checkpoint written after every epoch (overwritten atomically).
CHECKPOINT = "ckp_last.pth.tar"
#: The checkpoint of the epoch with the lowest selection score.
BEST_CHECKPOINT = "ckp_best.pth.tar"
_REQUIRED = ("epoch", "state_dict")


def numpy_rng_state() -> dict:
    """NumPy's global RNG state as tensors and numbers (loadable with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def set_numpy_rng_state(state: dict) -> None:
    """Inverse of :func:`numpy_rng_state`."""
    keys = state["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state(
        (state["name"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"])
    )


def rng_states(generators: dict[str, torch.Generator] | None = None) -> dict:
    """Every random-number state a training draws from: torch's, NumPy's and Python's global
    generators, CUDA's (when initialised) and ``generators`` by name."""
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": numpy_rng_state(),
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict, generators: dict[str, torch.Generator] | None = None) -> None:
    """Inverse of :func:`rng_states`; generators named in ``state`` but not in ``generators``
    are ignored."""
    torch.set_rng_state(state["torch"].cpu())
    set_numpy_rng_state(state["numpy"])
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    for k, s in state.get("generators", {}).items():
        if generators and k in generators:
            generators[k].set_state(s.cpu())


def load_checkpoint(path: str | Path, map_location=None) -> dict:
    """A checkpoint written by :class:`~deepinv_ei.training.Trainer`, loaded safely
    (``weights_only=True``).

    :raises ValueError: naming ``path`` if it is corrupt, truncated, holds code objects or lacks
        the entries of a training checkpoint.
    """
    ckp = safe_load_torch(path, map_location=map_location)
    missing = [k for k in _REQUIRED if not isinstance(ckp, dict) or k not in ckp]
    if missing:
        found = sorted(ckp) if isinstance(ckp, dict) else type(ckp).__name__
        raise ValueError(
            f"{path}: expected a training checkpoint with entries {list(_REQUIRED)}, "
            f"found {found}; delete it to train from scratch"
        )
    return ckp
