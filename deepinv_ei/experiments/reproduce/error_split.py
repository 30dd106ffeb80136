r"""Where a reconstruction's error lives: the range and nullspace parts of :math:`\hat x - x`.

With :math:`P_R = A^\dagger A` the orthogonal projector onto the row space of :math:`A`
(:math:`\mathcal R(A^\top) = \mathcal N(A)^\perp`) and :math:`P_N = I - P_R`, every error splits
orthogonally,

.. math::

    e = \hat x - x = P_R e + P_N e, \qquad \|e\|^2 = \|P_R e\|^2 + \|P_N e\|^2 .

Measurement consistency alone can only reduce :math:`\|P_R e\|` (the measurements see nothing
of :math:`P_N e`); equivariant imaging is meant to learn the nullspace part as well. The part
sizes are reported absolutely, relative to :math:`\|x\|`, and as PSNR-like values
:math:`10\log_{10}\big(n / \|P e\|^2\big)` (data range 1, :math:`n` the number of pixels), so
that :math:`10^{-\mathrm{PSNR}/10} = 10^{-\mathrm{PSNR}_R/10} + 10^{-\mathrm{PSNR}_N/10}`.

How :math:`P_R` is computed:

- inpainting (:class:`deepinv.physics.Inpainting`): :math:`A^\dagger A` is the mask itself;
- compressed sensing (:class:`deepinv.physics.CompressedSensing`, :math:`A` a dense
  :math:`m\times n` Gaussian matrix): :math:`P_R = A^\dagger A` with deepinv's stored
  pseudo-inverse;
- any other linear physics (CT): :math:`P_R e` is the minimum-norm solution :math:`z` of
  :math:`A^\top A z = A^\top A e`, found by batched conjugate gradients started at 0 (the
  iterates stay in :math:`\mathcal R(A^\top)`, so the limit is :math:`A^\dagger A e`), see
  :func:`range_projection_cg`.
"""

from __future__ import annotations

from dataclasses import dataclass

import deepinv as dinv
import torch


@dataclass(frozen=True)
class CGInfo:
    """How a batched CG solve ended: iterations run and the largest final relative residual."""

    iterations: int
    relative_residual: float


def range_projection_cg(
    physics, e: torch.Tensor, tol: float = 1e-6, max_iter: int = 1000
) -> tuple[torch.Tensor, CGInfo]:
    r""":math:`P_R e = A^\dagger A e` by conjugate gradients on :math:`A^\top A z = A^\top A e`.

    deepinv's :func:`~deepinv.optim.linear.conjugate_gradient` solves the whole batch at once with
    one step length per sample, and stops when every sample's residual
    :math:`\|A^\top A (e - z)\|` is below ``tol`` times its initial value :math:`\|A^\top A e\|`.
    Computed in the dtype of ``e`` (use float64 for tight tolerances).

    :param physics: a linear physics with batched ``A`` and ``A_adjoint``.
    :param torch.Tensor e: the errors, shape ``(B, ...)``.
    :param float tol: relative residual at which to stop.
    :param int max_iter: iteration cap.
    :return: ``(P_R e, CGInfo)``, with the largest final relative residual recomputed from
        :math:`z`.
    """
    if not isinstance(e, torch.Tensor) or e.ndim < 2:
        raise ValueError(
            f"e must be a (B, ...) tensor, got {type(e).__name__} {getattr(e, 'shape', '')}"
        )
    if tol <= 0 or max_iter < 1:
        raise ValueError(f"tol must be > 0 and max_iter >= 1, got tol={tol}, max_iter={max_iter}")

    def normal(v: torch.Tensor) -> torch.Tensor:
        return physics.A_adjoint(physics.A(v)).to(e.dtype)

    applications = []

    def counted(v: torch.Tensor) -> torch.Tensor:
        applications.append(1)
        return normal(v)

    b = normal(e)
    # eps: a step needs no regularising here, only 0/0 avoided for an exactly solved sample.
    tiny = torch.finfo(e.dtype).tiny
    z = dinv.optim.linear.conjugate_gradient(counted, b, max_iter=max_iter, tol=tol, eps=tiny)
    b_norm = b.flatten(1).norm(dim=1).clamp_min(tiny)
    rel = float(((b - normal(z)).flatten(1).norm(dim=1) / b_norm).max())
    return z, CGInfo(_cg_iterations(len(applications)), rel)


def _cg_iterations(applications: int) -> int:
    """Iterations of deepinv's CG from its applications of the operator: one for the initial
    residual, one per iteration, and one more to refresh the residual after the 101st, 201st,
    ... iteration when it goes on."""
    iterations, seen = 0, 1
    while seen < applications:
        iterations += 1
        seen += 1
        if iterations > 1 and (iterations - 1) % 100 == 0 and seen < applications:
            seen += 1
    return iterations


def range_projection(physics, e: torch.Tensor, tol: float = 1e-6, max_iter: int = 1000):
    r""":math:`P_R e = A^\dagger A e` for ``physics``: exact for inpainting masks and dense
    compressed sensing, batched CG in float64 otherwise (see the module docstring).

    :return: ``(P_R e, CGInfo or None)`` (``None`` when the projection is exact).
    """
    if isinstance(physics, dinv.physics.Inpainting):
        mask = physics.mask.to(e.device)
        if mask.ndim == e.ndim - 1:
            mask = mask.unsqueeze(0)
        keep = (mask != 0).to(e.dtype)
        return e * keep, None
    if isinstance(physics, dinv.physics.CompressedSensing) and not physics.channelwise:
        # deepinv's A_dagger applies the stored pseudo-inverse, in the physics' dtype
        return physics.A_dagger(physics.A(e.to(physics.dtype))).to(e.dtype), None
    z, info = range_projection_cg(physics, e.double(), tol=tol, max_iter=max_iter)
    return z.to(e.dtype), info


def _db(n: int, sq: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(n / sq.clamp_min(1e-30))


@torch.no_grad()
def error_split(
    physics,
    x: torch.Tensor,
    x_hat: torch.Tensor,
    batch: int = 16,
    tol: float = 1e-6,
    max_iter: int = 1000,
) -> dict:
    r"""Range / nullspace split of the errors ``x_hat - x`` over a test set, averaged per image.

    :param physics: the task's linear physics.
    :param torch.Tensor x: ground truth, ``(N, C, H, W)``.
    :param torch.Tensor x_hat: reconstructions of the same shape.
    :return: a dict with, for ``part`` in ``range``, ``null``: ``{part}_norm`` (mean
        :math:`\|P e\|`), ``{part}_rel`` (mean :math:`\|P e\| / \|x\|`), ``{part}_psnr`` (mean of
        :math:`10\log_{10}(n/\|Pe\|^2)`, dB), ``{part}_fraction`` (mean share
        :math:`\|Pe\|^2/\|e\|^2` of the squared error), plus ``cg_iterations`` and
        ``cg_relative_residual`` (``None`` for exact projections).

    :Example:

    >>> import torch, deepinv as dinv
    >>> physics = dinv.physics.Inpainting(img_size=(1, 8, 8), mask=0.5,
    ...                                   rng=torch.Generator().manual_seed(0))
    >>> x = torch.rand(2, 1, 8, 8)
    >>> s = error_split(physics, x, physics.A_dagger(physics(x)))
    >>> s["range_norm"] < 1e-6, s["null_fraction"]
    (True, 1.0)
    """
    if x.shape != x_hat.shape or x.ndim < 2:
        raise ValueError(
            f"x and x_hat must be (N, ...) tensors of one shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}"
        )
    rows, iters, resid = [], 0, 0.0
    for i in range(0, len(x), batch):
        xs = x[i : i + batch].double()
        e = x_hat[i : i + batch].to(xs.device).double() - xs
        pr, info = range_projection(physics, e, tol=tol, max_iter=max_iter)
        pn = e - pr
        if info is not None:
            iters, resid = max(iters, info.iterations), max(resid, info.relative_residual)
        sq = lambda t: t.flatten(1).pow(2).sum(1)  # noqa: E731
        rows.append((sq(pr), sq(pn), sq(e), sq(xs)))
    r2, n2, e2, x2 = (torch.cat(c) for c in zip(*rows, strict=True))
    n = x[0].numel()
    out = {}
    for part, s in (("range", r2), ("null", n2)):
        out[f"{part}_norm"] = float(s.sqrt().mean())
        out[f"{part}_rel"] = float((s.sqrt() / x2.sqrt().clamp_min(1e-30)).mean())
        out[f"{part}_psnr"] = float(_db(n, s).mean())
        out[f"{part}_fraction"] = float((s / e2.clamp_min(1e-30)).mean())
    exact = not (iters or resid)
    out["cg_iterations"] = None if exact else iters
    out["cg_relative_residual"] = None if exact else resid
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}


def format_split(s: dict) -> str:
    """``"range 31.2 dB / null 27.9 dB (null 68 % of the squared error)"``."""
    return (
        f"range {s['range_psnr']:.2f} dB / null {s['null_psnr']:.2f} dB "
        f"(null {100 * s['null_fraction']:.0f} % of the squared error)"
    )


__all__ = ["CGInfo", "error_split", "format_split", "range_projection", "range_projection_cg"]
