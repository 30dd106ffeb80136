r"""Can EI identify the signals? The rank condition of Tachella, Chen & Davies (JMLR 2023).

With measurements of one operator :math:`A \in \mathbb{R}^{m\times n}` and signals invariant to a
group :math:`\{T_g\}`, EI sees the virtual operators :math:`A T_g`. A necessary condition for
learning the signals is that the stacked operator

.. math::

    \mathcal{A} = \begin{bmatrix} A T_{g_1} \\ \vdots \\ A T_{g_G} \end{bmatrix}

has full column rank :math:`n`, i.e. that

.. math::

    M = \frac{1}{G}\sum_{g} T_g^\top A^\top A\, T_g \succ 0 .

It needs :math:`m \ge \max_j c_j / s_j`, about :math:`m \ge n/G` for shifts, rotations and
reflections. If :math:`A^\top A` commutes with every :math:`T_g`
(:math:`T_g^\top A^\top A T_g = A^\top A`), then :math:`\ker A T_g = \ker A` and the rank stays
that of :math:`A`: EI cannot help.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from deepinv_ei.transforms.base import GroupTransform

#: The values of ``identifiability(..., method=...)``.
METHODS = ("auto", "dense", "iterative")
DENSE_MAX_N = 2500
#: Default memory limit of the dense method (bytes), see :func:`dense_memory_bytes`.
DENSE_MAX_BYTES = 4 * 2**30
_DENSE_MATRICES = 7  # n x n float64 matrices alive at the peak of _dense (Gram, sum, moved copies)


def dense_memory_bytes(n: int, m: int) -> int:
    r"""Peak memory of ``method="dense"`` for :math:`n` unknowns and :math:`m` measurements:
    the :math:`n\times m` matrix of :math:`A` and about seven :math:`n\times n` float64
    matrices (:math:`A^\top A`, the running sum, moved copies, the eigensolver's workspace).
    """
    return 8 * (n * m + _DENSE_MATRICES * n * n)


@dataclass
class IdentifiabilityReport:
    r"""Result of :func:`identifiability`.

    :ivar n: signal dimension :math:`C H W`.
    :ivar m: number of (real) measurements of :math:`A`.
    :ivar group_size: number of group elements :math:`G` in the sum (identity included).
    :ivar rank: rank of the stacked operator (``rank_is_estimate`` for the iterative method,
        where it is ``n`` minus the near-zero eigenvalues found among the ``k`` computed).
    :ivar nullity: ``n - rank``.
    :ivar eigenvalues: the smallest eigenvalues of :math:`M`, ascending.
    :ivar largest_eigenvalue: :math:`\lambda_{\max}(M)`.
    :ivar rank_A: rank of :math:`A` alone (dense method only, else ``None``).
    :ivar operator_is_equivariant: :math:`A^\top A` commutes with every :math:`T_g` (relative
        defect below ``equivariance_rtol``): the group adds nothing.
    :ivar equivariance_defect: :math:`\max_g \|T_g^\top A^\top A T_g - A^\top A\| / \|A^\top A\|`
        (Frobenius norm for the dense method, on random probes for the iterative one).
    :ivar identifiable: ``rank == n``.
    :ivar method: ``"dense"`` or ``"iterative"``.
    :ivar converged: the iterative eigensolver reached its tolerance (always ``True`` when dense);
        unconverged Ritz values are upper bounds, so an unconverged "identifiable" may overstate.
    :ivar rtol: singular values :math:`\sigma_i = \sqrt{\lambda_i}` count in the rank when
        :math:`\sigma_i > \text{rtol}\cdot\sigma_{\max}`.
    """

    n: int
    m: int
    group_size: int
    rank: int
    nullity: int
    eigenvalues: np.ndarray
    largest_eigenvalue: float
    rank_A: int | None
    operator_is_equivariant: bool
    equivariance_defect: float
    identifiable: bool
    method: str
    rtol: float
    rank_is_estimate: bool = False
    converged: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def condition_number(self) -> float:
        r""":math:`\sigma_{\max}/\sigma_{\min}` of the stacked operator (``inf`` if singular)."""
        smallest = float(self.eigenvalues[0]) if len(self.eigenvalues) else 0.0
        if smallest <= 0:
            return math.inf
        return math.sqrt(self.largest_eigenvalue / smallest)

    def __str__(self) -> str:
        verdict = "IDENTIFIABLE" if self.identifiable else "NOT identifiable"
        if self.identifiable and not self.converged:
            verdict += " (eigensolver not converged: may overstate)"
        m_eff = self.rank_A if self.rank_A is not None else self.m
        approx = "~" if self.rank_is_estimate else ""
        eig = ", ".join(f"{v:.3g}" for v in self.eigenvalues[:6])
        lines = [
            f"Identifiability ({self.method}): {verdict}",
            f"  signal dimension n = {self.n}, measurements m = {self.m}"
            + (
                f" (rank A = {self.rank_A})"
                if self.rank_A is not None and self.rank_A < self.m
                else ""
            )
            + f", group elements G = {self.group_size}",
            f"  theory needs about m >= n/G = {self.n / self.group_size:.1f}: "
            + ("met" if m_eff >= self.n / self.group_size else "NOT met")
            + f" with m = {m_eff}",
            f"  rank [A T_g]_g = {approx}{self.rank} / {self.n}, nullity {approx}{self.nullity}"
            + (f"; rank A = {self.rank_A}" if self.rank_A is not None else ""),
            f"  smallest eigenvalues of mean_g T_g^T A^T A T_g: [{eig}]"
            f" (largest {self.largest_eigenvalue:.3g}, rank rtol {self.rtol:g} on singular values)",
            f"  A^T A commutes with the group: {self.operator_is_equivariant} "
            f"(defect {self.equivariance_defect:.2e})",
        ]
        if self.operator_is_equivariant:
            lines.append(
                "  WARNING: A is equivariant to this group, so EI cannot recover its nullspace; "
                "choose a group A is not equivariant to."
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- helpers
def _check_physics(physics: Any, need_adjoint: bool) -> None:
    if not callable(getattr(physics, "A", None)):
        raise TypeError(
            f"physics must have a callable A (a deepinv.physics.LinearPhysics), "
            f"got {type(physics).__name__}"
        )
    if need_adjoint and not callable(getattr(physics, "A_adjoint", None)):
        raise TypeError(
            f"the iterative method needs physics.A_adjoint, which {type(physics).__name__} lacks"
        )


def _check_img_size(img_size: Any) -> tuple[int, int, int]:
    try:
        size = tuple(int(s) for s in img_size)
    except TypeError:
        raise TypeError(f"img_size must be a tuple (C, H, W), got {img_size!r}") from None
    if len(size) != 3 or any(s < 1 for s in size) or any(int(s) != s for s in img_size):
        raise ValueError(f"img_size must be three positive integers (C, H, W), got {img_size!r}")
    return size


def _check_finite_output(t: torch.Tensor, what: str) -> None:
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t)
        if bad.any():
            raise ValueError(
                f"{what} returned {int(bad.sum())} NaN or infinite values out of {t.numel()} for "
                "a finite input: the physics is broken (NaN or Inf in its matrix, mask or "
                "parameters?); the rank of a non-finite operator is undefined"
            )


def _probe_physics(physics, img_size, device, dtype, need_adjoint: bool, seed: int) -> int:
    """Apply ``A`` (and ``A_adjoint``) once to a random input; returns ``m``. Non-finite outputs
    are a :class:`ValueError` here, before any eigensolver sees them."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, *img_size, generator=gen, dtype=torch.float64).to(device, dtype)
    with torch.no_grad():
        try:
            y = physics.A(x)
        except (RuntimeError, ValueError) as err:
            raise ValueError(
                f"physics.A failed on an input of shape {tuple(x.shape)} ({err}); img_size "
                "must be the (C, H, W) the physics acts on"
            ) from err
        _check_finite_output(_flat(y, 1), "physics.A")
        if need_adjoint:
            _check_finite_output(physics.A_adjoint(y), "physics.A_adjoint")
    return _flat(y, 1).shape[1]


def _physics_device(physics: Any) -> torch.device:
    if isinstance(physics, torch.nn.Module):
        for t in (*physics.parameters(), *physics.buffers()):
            return t.device
    return torch.device("cpu")


def _flat(y: Any, batch: int) -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"physics.A must return a torch.Tensor, got {type(y).__name__}")
    if y.is_complex():
        y = torch.view_as_real(y)  # A as a real-linear map
    return y.reshape(batch, -1)


def _working_dtype(physics: Any, img_size: tuple[int, ...], device: torch.device) -> torch.dtype:
    """float64 when the physics runs in it (e.g. deepinv's Inpainting), float32 otherwise."""
    probe = torch.zeros(1, *img_size, dtype=torch.float64, device=device)
    try:
        y = physics.A(probe)
    except (RuntimeError, TypeError):
        return torch.float32
    return (
        torch.float64
        if isinstance(y, torch.Tensor)
        and y.dtype
        in (
            torch.float64,
            torch.complex128,
        )
        else torch.float32
    )


def _elements(
    transform: GroupTransform,
    img_size: tuple[int, int, int],
    group_elements: dict[str, Any] | None,
    max_elements: int | None,
    seed: int,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    notes: list[str] = []
    if group_elements is None:
        elems = transform.group_elements(img_size)
        if elems is None:
            raise ValueError(
                f"{type(transform).__name__} has infinitely many elements: pass group_elements"
            )
    else:
        given, n, k = transform.normalise_params(group_elements, "cpu")
        if k != 1:
            raise ValueError(
                f"group_elements must hold one element per entry (shape (G, ...)), got {k} "
                "per-sample elements per entry"
            )
        elems = {name: v[:, 0] for name, v in given.items()}
    G = len(next(iter(elems.values())))
    if max_elements is not None and G > max_elements:
        gen = torch.Generator().manual_seed(seed)
        pick = torch.randperm(G, generator=gen)[:max_elements]
        elems = {k: v[pick] for k, v in elems.items()}
        notes.append(f"{max_elements} of {G} group elements sampled (seed {seed})")
    if not getattr(transform, "exact", True):
        notes.append("the transform is not an exact group action (interpolated rotations)")
    return elems, notes


def _contains_identity(transform: GroupTransform, elems: dict, img_size: tuple) -> bool:
    gen = torch.Generator().manual_seed(0)
    probe = torch.randn(1, *img_size, generator=gen, dtype=torch.float64)
    moved = transform.transform(probe, **{k: v.cpu() for k, v in elems.items()})
    return bool((moved == probe).flatten(1).all(dim=1).any())


def _apply(transform: GroupTransform, x: torch.Tensor, elems: dict, i: int, adjoint: bool):
    p = {name: v[i : i + 1] for name, v in elems.items()}  # one element, shared by the batch
    return transform.adjoint(x, **p) if adjoint else transform.transform(x, **p)


# ----------------------------------------------------------------------------- dense
def _dense(physics, transform, img_size, elems, add_identity, rtol, k, equiv_rtol, device, dtype):
    n = math.prod(img_size)
    chunk = max(1, min(n, 2**22 // max(n, 1)))
    rows = []
    with torch.no_grad():
        for start in range(0, n, chunk):
            idx = torch.arange(start, min(n, start + chunk), device=device)
            basis = torch.zeros(len(idx), n, dtype=dtype, device=device)
            basis[torch.arange(len(idx)), idx] = 1
            rows.append(_flat(physics.A(basis.reshape(-1, *img_size)), len(idx)).double().cpu())
    a_t = torch.cat(rows)  # (n, m): row j is A e_j
    _check_finite_output(a_t, "physics.A")
    m = a_t.shape[1]
    gram = a_t @ a_t.T  # A^T A, float64
    G = len(next(iter(elems.values())))
    total = gram.clone() if add_identity else torch.zeros_like(gram)
    defect = 0.0
    gram_norm = float(gram.norm()) or 1.0
    with torch.no_grad():
        for i in range(G):
            # M_g = T^T K T with T^T applied to images only: P = K T has rows T^T K[:, j]
            # (K is symmetric), and M_g has columns T^T P[:, j].
            p_g = _apply(transform, gram.reshape(n, *img_size), elems, i, True).reshape(n, n)
            m_g = _apply(transform, p_g.T.contiguous().reshape(n, *img_size), elems, i, True)
            m_g = m_g.reshape(n, n).T
            total += m_g
            defect = max(defect, float((m_g - gram).norm()) / gram_norm)
    total = (total + total.T) / 2 / (G + int(add_identity))
    lam = torch.linalg.eigvalsh(total).numpy()
    lam_a = torch.linalg.eigvalsh(gram).numpy()
    sig = np.sqrt(np.clip(lam, 0, None))
    sig_a = np.sqrt(np.clip(lam_a, 0, None))
    rank = int((sig > rtol * sig.max()).sum()) if sig.max() > 0 else 0
    rank_a = int((sig_a > rtol * sig_a.max()).sum()) if sig_a.max() > 0 else 0
    return dict(
        m=m,
        rank=rank,
        eigenvalues=lam[:k].copy(),
        largest_eigenvalue=float(lam[-1]),
        rank_A=rank_a,
        equivariance_defect=defect,
        operator_is_equivariant=defect < equiv_rtol,
        rank_is_estimate=False,
    )


# ------------------------------------------------------------------------- iterative
def _iterative(
    physics,
    transform,
    img_size,
    elems,
    add_identity,
    rtol,
    k,
    equiv_rtol,
    device,
    dtype,
    seed,
    tol,
    maxiter,
):
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh, lobpcg

    n = math.prod(img_size)
    G = len(next(iter(elems.values())))
    counts = {"matvec": 0}

    def normal(v: torch.Tensor) -> torch.Tensor:
        return physics.A_adjoint(physics.A(v))

    def apply_m(v: np.ndarray) -> np.ndarray:
        counts["matvec"] += 1
        x = torch.as_tensor(np.ascontiguousarray(v.T), device=device).to(dtype)
        x = x.reshape(-1, *img_size)
        with torch.no_grad():
            out = normal(x).double() if add_identity else torch.zeros_like(x, dtype=torch.float64)
            for i in range(G):
                tx = _apply(transform, x, elems, i, adjoint=False)
                out += _apply(transform, normal(tx), elems, i, adjoint=True).double()
        out = out / (G + int(add_identity))
        _check_finite_output(out, "physics.A_adjoint(physics.A(.))")
        return out.reshape(len(x), n).T.cpu().numpy()

    op = LinearOperator(
        (n, n), matvec=lambda v: apply_m(v.reshape(n, 1)).ravel(), matmat=apply_m, dtype=np.float64
    )
    rng = np.random.default_rng(seed)
    try:
        lam_max = float(
            eigsh(
                op, k=1, which="LA", v0=rng.standard_normal(n), tol=1e-3, return_eigenvectors=False
            )[0]
        )
    except ArpackNoConvergence as err:  # pragma: no cover - the top converges fast in practice
        lam_max = float(np.max(err.eigenvalues)) if len(err.eigenvalues) else float("nan")
    # LOBPCG with a block of k vectors: a block method resolves multiple (e.g. nullspace) eigenvalues,
    # where single-vector Lanczos stalls. Rayleigh-Ritz values are upper bounds of the smallest
    # eigenvalues, so "singular" verdicts hold even before convergence.
    block = rng.standard_normal((n, k))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Residual tolerance relative to the operator's scale.
        lam, _ = lobpcg(op, block, largest=False, tol=tol * lam_max, maxiter=maxiter)
    converged = not any("not reaching the requested tolerance" in str(w.message) for w in caught)
    lam = np.sort(lam)
    sig = np.sqrt(np.clip(lam, 0, None))
    nullity = int((sig <= rtol * math.sqrt(max(lam_max, 0.0))).sum())
    # Equivariance defect on random probes.
    gen = torch.Generator().manual_seed(seed)
    probes = torch.randn(2, *img_size, generator=gen, dtype=torch.float64).to(device, dtype)
    defect = 0.0
    with torch.no_grad():
        base = normal(probes).double()
        base_norm = float(base.norm()) or 1.0
        for i in range(G):
            tx = _apply(transform, probes, elems, i, adjoint=False)
            moved = _apply(transform, normal(tx), elems, i, adjoint=True).double()
            defect = max(defect, float((moved - base).norm()) / base_norm)
    m = _flat(physics.A(probes[:1]), 1).shape[1]
    return dict(
        m=m,
        rank=n - nullity,
        eigenvalues=lam,
        largest_eigenvalue=lam_max,
        rank_A=None,
        equivariance_defect=defect,
        operator_is_equivariant=defect < equiv_rtol,
        rank_is_estimate=True,
        converged=converged,
        notes=[
            f"iterative (LOBPCG, block {k}): {counts['matvec']} block applications of M, "
            + (
                "converged"
                if converged
                else f"NOT converged to tol {tol:g} (eigenvalues are upper bounds)"
            )
            + "; "
            + (
                f"all {k} computed eigenvalues are ~0, so the nullity is at least {k}"
                if nullity == k
                else f"{nullity} near-zero eigenvalues among the {k} smallest"
            )
        ],
    )


# ---------------------------------------------------------------------------- public
def identifiability(
    physics: Any,
    transform: GroupTransform,
    img_size: tuple[int, int, int],
    *,
    method: str = "auto",
    group_elements: dict[str, Any] | None = None,
    max_elements: int | None = None,
    include_identity: bool = True,
    rtol: float | None = None,
    equivariance_rtol: float = 1e-5,
    k: int = 6,
    tol: float | None = None,
    maxiter: int = 500,
    seed: int = 0,
    max_dense_bytes: int | None = DENSE_MAX_BYTES,
) -> IdentifiabilityReport:
    r"""Check the EI rank condition :math:`\operatorname{rank}[A T_g]_g = n` for ``physics`` and a group.

    :param physics: a linear physics with ``A`` (and ``A_adjoint`` for the iterative method)
        acting on ``(B, *img_size)`` tensors, e.g. any :class:`deepinv.physics.LinearPhysics`.
    :param transform: a :class:`deepinv_ei.transforms.GroupTransform`; all elements it can draw
        are used (the whole group for :math:`C_4`, :math:`D_4`, flips, shifts) unless
        ``group_elements`` (parameters of length :math:`G`) is given. Continuous rotations give
        their finite angle set; subsample it with ``max_elements``.
    :param img_size: ``(C, H, W)``.
    :param str method: ``"dense"`` (exact: matrix of :math:`A` from basis vectors, ``eigvalsh`` in
        float64), ``"iterative"`` (block LOBPCG on :math:`v \mapsto Mv`, never forming :math:`M`), or
        ``"auto"`` (dense for :math:`n \le 2500`).
    :param int max_elements: use a random subset of at most this many elements.
    :param bool include_identity: add :math:`A` itself (the measurement-consistency term of EI)
        when the elements do not contain the identity.
    :param float rtol: rank tolerance on singular values,
        :math:`\sigma_i > \text{rtol}\,\sigma_{\max}` (eigenvalues above
        :math:`\text{rtol}^2\lambda_{\max}`). Default 1e-5, far above the float32 rounding
        (~1e-7) of single-precision physics since :math:`A^\top A` is formed in float64; 1e-3 for
        the iterative method on float32 physics, whose eigenvalue floor is that rounding.
    :param float equivariance_rtol: tolerance on the relative commutation defect.
    :param int k: number of smallest eigenvalues reported (and computed, iteratively).
    :param float tol: LOBPCG residual tolerance relative to :math:`\lambda_{\max}` (default 1e-4
        for float32 physics, else 1e-6; Ritz values err by about the squared residual).
    :param int maxiter: LOBPCG iteration limit.
    :param int seed: seed of subsampling and random probes.
    :param int max_dense_bytes: refuse ``method="dense"`` when its estimated peak memory
        (:func:`dense_memory_bytes`: about :math:`8(nm + 7n^2)` bytes, 15 GiB at 128x128) is
        larger (default 4 GiB; ``None``: no limit).
    :return: :class:`IdentifiabilityReport`.
    :raises ValueError: for bad arguments, a physics that returns NaN or infinite values, or
        ``method="dense"`` beyond ``max_dense_bytes`` (the message gives the estimate and the
        alternative, ``method="iterative"``).

    :Examples:

    >>> import torch, deepinv as dinv
    >>> from deepinv_ei.diagnostics import identifiability
    >>> from deepinv_ei.transforms import Shift
    >>> physics = dinv.physics.Inpainting((1, 8, 8), mask=0.5, rng=torch.Generator().manual_seed(0))
    >>> identifiability(physics, Shift(), (1, 8, 8)).identifiable
    True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(transform, GroupTransform):
        raise TypeError(
            "transform must be a deepinv_ei.transforms.GroupTransform (it needs exact per-element "
            f"parameters and transposes), got {type(transform).__name__}"
        )
    size = _check_img_size(img_size)
    n = math.prod(size)
    if method == "auto":
        method = "dense" if n <= DENSE_MAX_N else "iterative"
    _check_physics(physics, need_adjoint=method == "iterative")
    if not (isinstance(k, int) and 1 <= k):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if method == "iterative" and k >= n - 1:
        raise ValueError(f"the iterative method needs k < n - 1 = {n - 1}, got k={k}")
    device = _physics_device(physics)
    dtype = _working_dtype(physics, size, device)
    if rtol is None:
        # The dense method forms A^T A in float64 whatever the physics' precision; the iterative
        # one applies the physics, so its eigenvalue floor is the physics' rounding (~1e-7
        # relative in float32, i.e. singular values ~3e-4).
        rtol = 1e-3 if method == "iterative" and dtype == torch.float32 else 1e-5
    if tol is None:
        tol = 1e-4 if dtype == torch.float32 else 1e-6
    elems, notes = _elements(transform, size, group_elements, max_elements, seed)
    m = _probe_physics(physics, size, device, dtype, method == "iterative", seed)
    if method == "dense" and max_dense_bytes is not None:
        need = dense_memory_bytes(n, m)
        if need > max_dense_bytes:
            raise ValueError(
                f"method='dense' at n = C*H*W = {n} (m = {m}) needs about {need / 2**30:.1f} GiB "
                f"({_DENSE_MATRICES} float64 n x n matrices), above max_dense_bytes = "
                f"{max_dense_bytes / 2**30:.1f} GiB: use method='iterative' (matrix-free "
                f"LOBPCG, memory about n*k), a smaller img_size, or raise max_dense_bytes"
            )
    add_identity = include_identity and not _contains_identity(transform, elems, size)
    elems = {name: v.to(device) for name, v in elems.items()}
    G = len(next(iter(elems.values()))) + int(add_identity)
    if add_identity:
        notes.append("identity added: the stacked operator includes A itself")
    if method == "dense":
        res = _dense(
            physics, transform, size, elems, add_identity, rtol, k, equivariance_rtol, device, dtype
        )
    else:
        res = _iterative(
            physics,
            transform,
            size,
            elems,
            add_identity,
            rtol,
            k,
            equivariance_rtol,
            device,
            dtype,
            seed,
            tol,
            maxiter,
        )
    notes = notes + res.pop("notes", [])
    if dtype == torch.float32:
        notes.append("physics evaluated in float32")
    return IdentifiabilityReport(
        n=n,
        group_size=G,
        nullity=n - res["rank"],
        identifiable=res["rank"] == n,
        method=method,
        rtol=rtol,
        notes=notes,
        **res,
    )
