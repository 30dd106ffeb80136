r"""
Learning from your measurements
===============================

From a raw scan to reconstructions with no ground truth anywhere in between: a simulated
parallel-beam acquisition (TIFF projections with Poisson noise, flats and darks) is ingested
into a measurement set with a sparse subset of its views, a reconstructor
:math:`f(y) = s\,G(A^\dagger y / s)` is trained on it with the unit-free EI objective and
validated on the views it never saw, and the trained bundle reconstructs every slice in a
fresh call. The simulated truth is opened only in the last section, to score the result.

The run is kept short (32² slices, 40 epochs or 90 s of training per model, whichever comes
first); see :doc:`/learning` for the full-size measurements.
"""

# %%
# A raw scan
# ----------
# :func:`~deepinv_ei.scan.simulate_scan` writes what a detector would: 16-bit projections,
# flats and darks, the angles in degrees. Its ground truth goes to a separate file, which we
# leave alone until the end.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from deepinv_ei.scan import MeasurementSet, ingest, simulate_scan
from deepinv_ei.training import reconstruct, train

torch.manual_seed(0)
work = Path(tempfile.mkdtemp())
scan = simulate_scan(work / "raw", "parallel", n_views=360, n_slices=24, size=32, I0=2e4, seed=0)

# %%
# A measurement set
# -----------------
# Flat/dark correction, :math:`-\log`, and every 20th view kept (18 views); the other 342 are
# held out for validation.
ingest(
    work / "scan.h5",
    projections=scan.projections,
    flats=scan.flats,
    darks=scan.darks,
    angles=scan.angles,
    angle_unit="deg",
    geometry="parallel",
    pixel_size=0.02,
    unit="mm",
    keep_every=20,
)
mset = MeasurementSet(work / "scan.h5")
print(mset.describe())

# %%
# Training from the measurements alone
# ------------------------------------
# EI (here Robust EI: the set's flats give :math:`I_0`, hence the noise level) against the
# baseline trained on the data term alone (:math:`\alpha = 0`). After every epoch both are
# scored on the validation slices by how well they predict the held-out views; the best
# epoch is kept.
common = {"epochs": 40, "minutes": 1.5, "width": 8, "batch_size": 4, "verbose": False}
ei = train(work / "scan.h5", work / "run_ei", alpha=0.1, **common)
mc = train(work / "scan.h5", work / "run_mc", alpha=0.0, **common)
for name, run in (("EI", ei), ("alpha = 0", mc)):
    print(
        f"{name}: held-out view error {run['scores']['heldout_view_error']:.4f} "
        f"(FBP {run['fbp_scores']['heldout_view_error']:.4f}), {run['epochs']} epochs"
    )

fig, ax = plt.subplots(figsize=(5, 3))
for name, run in (("EI", ei), ("alpha = 0", mc)):
    ax.plot([r["epoch"] for r in run["history"]], [r["heldout_view_error"] for r in run["history"]],
            label=name)  # fmt: skip
ax.axhline(ei["fbp_scores"]["heldout_view_error"], color="k", ls="--", label="FBP")
ax.set(xlabel="epoch", ylabel="held-out view error", title="validation without ground truth")
ax.legend()
fig.tight_layout()

# %%
# Reconstructing every slice from the bundle
# ------------------------------------------
# The run folder is a bundle: weights, architecture, scanner spec and hash, data scaling.
# ``reconstruct`` needs nothing else (the same as ``deepinv-ei reconstruct RUN SCAN --out``).
reconstruct(work / "run_ei", work / "scan.h5", work / "ei.npy", fbp=True, progress=False)
reconstruct(work / "run_mc", work / "scan.h5", work / "mc.npy", progress=False)
volumes = {
    "FBP": np.load(work / "ei.fbp.npy"),
    "alpha = 0": np.load(work / "mc.npy"),
    "EI": np.load(work / "ei.npy"),
}

# %%
# Only now: the truth
# -------------------
# PSNR on the validation slices, which training never used.
truth = scan.load_ground_truth()["attenuation"]
val = mset.val_slices


def psnr(x, t):
    return np.mean(
        [
            10 * np.log10(ti.max() ** 2 / np.mean((xi - ti) ** 2))
            for xi, ti in zip(x, t, strict=True)
        ]
    )


for name, volume in volumes.items():
    print(f"{name}: {psnr(volume[val], truth[val]):.2f} dB on the validation slices {list(val)}")

fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
shown = {"truth": truth, **volumes}
for ax, (name, volume) in zip(axes, shown.items(), strict=True):
    ax.imshow(volume[val[0]], cmap="gray", vmin=0, vmax=truth[val[0]].max())
    label = name if name == "truth" else f"{name}\n{psnr(volume[val], truth[val]):.2f} dB"
    ax.set_title(label, fontsize=9)
    ax.set_axis_off()
fig.tight_layout()
plt.show()
