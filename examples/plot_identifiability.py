r"""
Checking identifiability before training
========================================

EI can only learn what the group reveals: with measurements :math:`y = Ax` and a group
:math:`\{T_g\}` the signals are invariant to, the virtual operators :math:`A T_g` must together
see every direction, i.e. the stacked operator :math:`[A T_1; \dots; A T_G]` must have full
column rank :math:`n` (Tachella, Chen & Davies, JMLR 2023). If :math:`A` is equivariant to the
group (:math:`A T_g = T'_g A`), the rank stays that of :math:`A` and EI cannot help.

:func:`~deepinv_ei.diagnostics.identifiability` checks this in seconds, before any training,
through the eigenvalues of :math:`M = \frac1G \sum_g T_g^\top A^\top A T_g`.
"""

# %%
# Inpainting: shifts make the mask identifiable
# ----------------------------------------------
# One mask alone (the identity as the only group element) leaves the missing pixels in the
# nullspace; averaged over all circular shifts, the mask becomes a multiple of the identity.
import deepinv as dinv
import matplotlib.pyplot as plt
import numpy as np
import odl
import torch
from odl.applications.tomo import parallel_beam_geometry

from deepinv_ei.diagnostics import identifiability
from deepinv_ei.odl import ray_transform_physics
from deepinv_ei.transforms import Reflect, Rotate, Shift

size = (1, 16, 16)
inpainting = dinv.physics.Inpainting(size, mask=0.7, rng=torch.Generator().manual_seed(0))
alone = identifiability(inpainting, Shift(), size, group_elements={"y_shift": [0], "x_shift": [0]})
shifts = identifiability(inpainting, Shift(), size)
print(alone)
print(shifts)

# %%
# A blur that commutes with shifts: choose another group
# -------------------------------------------------------
# A circular blur is shift-equivariant, so shifts cannot fill its nullspace (the frequencies the
# filter kills). Flips do not help either: :math:`A^\top A` is a symmetric filter, which commutes
# with them. Quarter turns, which turn this horizontal blur into a vertical one, fill everything
# but the checkerboard, which the blur kills in both orientations.
kernel = torch.zeros(1, 1, 1, 2)
kernel[..., 0, :] = 0.5
blur = dinv.physics.BlurFFT(size, filter=kernel)
reports = {
    "blur + shifts": identifiability(blur, Shift(), size),
    "blur + quarter turns": identifiability(blur, Rotate(multiples=90), size),
    "blur + flips": identifiability(blur, Reflect(), size),
    "inpainting alone": alone,
    "inpainting + shifts": shifts,
}
for name, r in reports.items():
    flag = "A equivariant: EI cannot help" if r.operator_is_equivariant and r.group_size > 1 else ""
    print(f"{name:22s} rank {r.rank:3d} / {r.n}  identifiable={r.identifiable}  {flag}")

# %%
# The rank in a picture
# ---------------------
# The smallest eigenvalues of :math:`M`: zeros are directions no :math:`A T_g` sees.
fig, ax = plt.subplots(figsize=(6.5, 3.2))
for name, r in reports.items():
    ev = np.clip(np.asarray(r.eigenvalues, dtype=float), 1e-17, None)
    ax.semilogy(np.arange(1, len(ev) + 1), ev, "o-", label=f"{name} (rank {r.rank})")
ax.set_xlabel("index of the smallest eigenvalues of M")
ax.set_ylabel("eigenvalue (clipped at 1e-17)")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Sparse-view CT: rotations that map the views onto themselves
# ------------------------------------------------------------
# With 8 parallel-beam views over 180 degrees, rotating by a multiple of 22.5 degrees maps the
# view set onto itself: those rotations are symmetries of :math:`A`. The ``"iterative"`` method
# would serve larger images; at 16x16 the dense one is exact.
space = odl.uniform_discr([-1, -1], [1, 1], (16, 16), dtype="float32")
ct = ray_transform_physics((space, parallel_beam_geometry(space, num_angles=8)))
same_views = identifiability(
    ct, Rotate(), size, group_elements={"theta": [0.0, 90.0, 180.0, 270.0]}
)
new_views = identifiability(ct, Rotate(), size, group_elements={"theta": [0.0, 10.0, 35.0, 60.0]})
print(f"8 views, quarter turns:       rank {same_views.rank} / {same_views.n}")
print(f"8 views, 10/35/60 degrees:    rank {new_views.rank} / {new_views.n}")
plt.show()
