r"""
From a raw scan to a measurement set
====================================

EI needs measurements only, so a real scan is where it starts. This example writes a simulated
raw parallel-beam acquisition (16-bit TIFF projections with Poisson noise, a detector gain
pattern, dark offset and read noise, flat and dark fields, angles in degrees), ingests it as
``deepinv-ei ingest`` would (flat/dark correction, :math:`-\log`, a sparse-view subset with the
other views held out, a seeded split of the slices), inspects the set and reconstructs it by
filtered back-projection (FBP), all without the ground truth, which is used at the end only
to score.
"""

# %%
# A simulated raw scan
# --------------------
# 360 views over 180 degrees of a 3D phantom of 16 slices, 64 x 64 pixels of 0.02 mm; each
# detector row sees one slice. The files are what a detector writes.
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import tifffile
import torch

from deepinv_ei.scan import MeasurementSet, ingest, simulate_scan

work = Path(tempfile.mkdtemp())
start = time.perf_counter()
scan = simulate_scan(work / "scan", n_views=360, n_slices=16, size=64, I0=2e4)
print(f"simulated in {time.perf_counter() - start:.1f} s:", scan.projections)
raw = tifffile.imread(sorted((work / "scan" / "projections").glob("*.tif"))[90])
flat = tifffile.imread(sorted((work / "scan" / "flats").glob("*.tif"))[0])
print("one projection:", raw.shape, raw.dtype, "counts", raw.min(), "..", raw.max())

# %%
# Ingest
# ------
# The same as ``deepinv-ei ingest --projections 'scan/projections/*.tif' --flats ... --darks
# ... --angles scan/angles_deg.txt --geometry parallel --pixel-size 0.02 --unit mm
# --keep-every 20``: 18 views are kept for training, the other 342 held out.
summary = ingest(
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
print(summary)

# %%
# Inspect
# -------
# ``deepinv-ei inspect scan.h5`` prints this and saves a sinogram beside its FBP.
ms = MeasurementSet(work / "scan.h5")
print(ms.describe())

# %%
# FBP of the set
# --------------
# The physics comes from the set's own scanner spec; FBP of the sparse-view sinograms shows
# the streaks EI learns to remove. The ground truth is read only to score.
physics = ms.physics()
y = ms.y("test")
with torch.no_grad():
    x_fbp = physics.A_dagger(y)
truth = scan.load_ground_truth()["attenuation"][ms.val_slices]
mse = np.mean((x_fbp[:, 0].numpy() - truth) ** 2, axis=(1, 2))
print("PSNR of FBP (validation slices):", np.round(10 * np.log10(truth.max() ** 2 / mse), 2))

fig, axes = plt.subplots(1, 4, figsize=(11, 2.8))
axes[0].imshow(raw, cmap="gray", aspect="auto")
axes[0].set_title("raw projection (counts)")
axes[1].imshow(y[0, 0].numpy(), cmap="gray", aspect="auto")
axes[1].set_title(f"sinogram, slice {ms.val_slices[0]}")
axes[2].imshow(x_fbp[0, 0].numpy(), cmap="gray")
axes[2].set_title("FBP (1/mm)")
axes[3].imshow(truth[0], cmap="gray")
axes[3].set_title("ground truth")
for ax in axes:
    ax.set_axis_off()
fig.tight_layout()
plt.show()
ms.close()
