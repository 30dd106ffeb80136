r"""A k-fold split of the views, to validate without views held out at ingest.

A measurement set whose every view was kept has no held-out views to score a model on. A fold
holds some of the kept views out instead: with :math:`n` kept views :math:`0, \dots, n-1` (in
increasing angle), fold :math:`k` of :math:`K` holds out

.. math::

    F_k = \{v : v \bmod K = k\},

every :math:`K`-th view, interleaved evenly in angle, and trains on the others,
:math:`T_k = \{0, \dots, n-1\} \setminus F_k`: the training physics :math:`A_T` is the ray
transform of the views :math:`T_k` (the scanner spec with those angles,
:meth:`~deepinv_ei.scan.ScannerSpec.select_views`), the training data are :math:`y` without the
rows :math:`F_k`, and the score's held-out physics :math:`A_F` and data :math:`y_F` are the
views :math:`F_k` of the validation slices. The rows :math:`F_k` of the training slices are
never read.

**The linear reconstruction of a fold.** :math:`f(y) = s\,G(A_T^\dagger y/s)` needs an FBP of
the views :math:`T_k`, which are not evenly spaced for :math:`K \ge 3` (FBP's quadrature
assumes they are). With the FBP of all kept views, :math:`A^\dagger = A^\top R` (each view
ramp-filtered by :math:`R`, then back-projected with the weight of one view spacing), the fold
uses the trapezoidal quadrature of its views on the periodic view grid:

.. math::

    A_T^\dagger y_T = A^\dagger E\,(w \odot y_T), \qquad
    w_j = \tfrac12\big((t_{j+1} - t_j) + (t_j - t_{j-1})\big)\ (\mathrm{mod}\ n),

with :math:`t_0 < \dots < t_{m-1}` the views of :math:`T_k`, the neighbours taken cyclically,
and :math:`E` the embedding that puts the rows of :math:`y_T` back at :math:`T_k` and zeros
elsewhere. The weights sum to :math:`n`, the total weight of the full FBP's views, and a
view next to a held-out one stands for half of the gap; for :math:`K = 2` with :math:`n` even
every :math:`w_j = 2` and :math:`A_T^\dagger` is the FBP of the evenly spaced views
:math:`T_k` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import deepinv as dinv
import numpy as np
import torch

__all__ = [
    "DEFAULT_VIEW_FOLDS",
    "MIN_TRAINING_VIEWS",
    "ViewFold",
    "FoldPhysics",
    "resolve_view_fold",
    "fold_physics",
]

#: The number of folds used when a set has no held-out views and none is given.
DEFAULT_VIEW_FOLDS = 5
#: The fewest views a fold may leave for training.
MIN_TRAINING_VIEWS = 2


@dataclass(frozen=True)
class ViewFold:
    r"""Fold ``fold`` of a ``folds``-fold split of ``n_views`` kept views (see the module
    documentation).

    :param int n_views: the kept views :math:`n`.
    :param int folds: :math:`K`, from 2 to :math:`n`.
    :param int fold: :math:`k`, from 0 to :math:`K - 1`.
    :raises ValueError: naming what was expected, for any other value or when fewer than
        :data:`MIN_TRAINING_VIEWS` views would be left for training.

    >>> ViewFold(10, 4, 1).held.tolist(), ViewFold(10, 4, 1).kept.tolist()
    ([1, 5, 9], [0, 2, 3, 4, 6, 7, 8])
    """

    n_views: int
    folds: int
    fold: int

    def __post_init__(self) -> None:
        for name in ("n_views", "folds", "fold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name}: expected an integer, got {value!r}")
        if not 2 <= self.folds <= self.n_views:
            raise ValueError(
                f"view_folds: expected an integer from 2 to the set's {self.n_views} kept "
                f"views, got {self.folds}"
            )
        if not 0 <= self.fold < self.folds:
            raise ValueError(
                f"fold: expected an integer from 0 to {self.folds - 1} (view_folds={self.folds}), "
                f"got {self.fold}"
            )
        left = self.n_views - len(self.held)
        if left < MIN_TRAINING_VIEWS:
            raise ValueError(
                f"view_folds={self.folds}: fold {self.fold} holds out {len(self.held)} of the "
                f"{self.n_views} kept views and leaves {left} for training; expected at least "
                f"{MIN_TRAINING_VIEWS} (use more views, or view_folds=0)"
            )

    @property
    def held(self) -> np.ndarray:
        """The held-out views :math:`F_k`, indices into the kept views, increasing."""
        return np.arange(self.fold, self.n_views, self.folds)

    @property
    def kept(self) -> np.ndarray:
        """The training views :math:`T_k`, increasing."""
        return np.setdiff1d(np.arange(self.n_views), self.held)

    def weights(self) -> np.ndarray:
        r"""The quadrature weights :math:`w_j` of the training views (they sum to :math:`n`)."""
        t = self.kept
        gaps = np.diff(np.append(t, t[0] + self.n_views)).astype(np.float64)
        return 0.5 * (gaps + np.roll(gaps, 1))

    def split(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y[..., T_k, :], y[..., F_k, :])`` of sinograms ``(..., views, detectors)``."""
        if y.shape[-2] != self.n_views:
            raise ValueError(
                f"expected sinograms of the {self.n_views} kept views, got shape {tuple(y.shape)}"
            )
        return y[..., torch.as_tensor(self.kept), :], y[..., torch.as_tensor(self.held), :]

    def to_dict(self, angles: Any = None) -> dict:
        """``{"view_folds", "fold", "held_views", "training_views"}`` (and ``held_angles`` in
        radians from the kept views' ``angles``), as runs record it."""
        out = {
            "view_folds": int(self.folds),
            "fold": int(self.fold),
            "held_views": self.held.tolist(),
            "training_views": int(len(self.kept)),
        }
        if angles is not None:
            out["held_angles"] = [float(a) for a in np.asarray(angles)[self.held]]
        return out


def resolve_view_fold(
    view_folds: int | None, fold: int, n_views: int, n_heldout: int
) -> ViewFold | None:
    """The fold a run validates on, or ``None`` when it validates on the views held out at
    ingest (or on none).

    :param view_folds: ``None``: :data:`DEFAULT_VIEW_FOLDS` folds (at most ``n_views``) when
        the set has no held-out views, else none; ``0``: none; ``K >= 2``: ``K`` folds, only
        for a set without held-out views.
    :param int fold: the fold.
    :param int n_views: the set's kept views.
    :param int n_heldout: the set's held-out views.
    :raises ValueError: for folds asked of a set with held-out views, or a split that does not
        fit the views (see :class:`ViewFold`).
    """
    if view_folds == 0:
        return None
    if n_heldout:
        if view_folds is None:
            return None
        raise ValueError(
            f"view_folds={view_folds}: the set has {n_heldout} views held out at ingest, which "
            "score the model without a refit; k-fold validation is for sets without them "
            "(drop --view-folds, or pass --view-folds 0)"
        )
    folds = min(DEFAULT_VIEW_FOLDS, n_views) if view_folds is None else view_folds
    return ViewFold(n_views, folds, fold)


class FoldPhysics(dinv.physics.LinearPhysics):
    r"""The training physics :math:`A_T` of a fold: ``A`` and ``A_adjoint`` of the views
    :math:`T_k`, ``A_dagger`` the weighted FBP :math:`A^\dagger E (w \odot y_T)` (module
    documentation).

    :param views: the physics of the views :math:`T_k` (their ray transform).
    :param full: the physics of every kept view, with FBP as ``A_dagger``.
    :param ViewFold fold: the fold.
    :param device: the device of the physics (that of ``views`` and ``full``).
    """

    def __init__(self, views: Any, full: Any, fold: ViewFold, device: Any = "cpu"):
        super().__init__(
            A=views.A, A_adjoint=views.A_adjoint, img_size=views.img_size, device=device
        )
        self.views, self.full, self.fold = views, full, fold
        self.register_buffer("rows", torch.as_tensor(fold.kept), persistent=False)
        self.register_buffer("weights", torch.as_tensor(fold.weights())[:, None], persistent=False)

    def A(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.views.A(x, **kwargs)

    def A_adjoint(self, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.views.A_adjoint(y, **kwargs)

    def A_dagger(self, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        rows = self.rows.to(y.device)
        shape = (*y.shape[:-2], self.fold.n_views, y.shape[-1])
        weighted = y * self.weights.to(device=y.device, dtype=y.dtype)
        return self.full.A_dagger(y.new_zeros(shape).index_copy(-2, rows, weighted))


def fold_physics(spec: Any, full: Any, fold: ViewFold, device: Any = "cpu") -> tuple[Any, Any]:
    """``(A_T, A_F)``: the :class:`FoldPhysics` of the training views and the physics of the
    held-out views of ``fold``, from the kept views' scanner ``spec`` and their physics
    ``full`` (which must have FBP as ``A_dagger``).

    :raises ValueError: when ``full`` has no FBP (a cone-beam set).
    """
    from deepinv_ei.odl import OdlPhysics, RayTransformPhysics, as_ray_transform
    from deepinv_ei.scan import geometry_from_spec

    if not isinstance(full, RayTransformPhysics):
        raise ValueError(
            f"k-fold validation needs the FBP of the kept views (2D parallel or fan beam); "
            f"the {spec.geometry} physics has none: ingest with views held out "
            "(--keep-every) or pass view_folds=0"
        )

    def views(indices: np.ndarray) -> Any:
        ray = as_ray_transform(geometry_from_spec(spec.select_views(indices)))
        return OdlPhysics(ray, device=device)

    return FoldPhysics(views(fold.kept), full, fold, device), views(fold.held)
