r"""
Reading and plotting a reproduction's results
=============================================

``benchmarks/reproduce_iccv.py`` (or ``python -m deepinv_ei.experiments.reproduce``, or
:func:`deepinv_ei.experiments.reproduce.run` from Python) trains and compares :math:`A^\dagger y`,
MC, EI and supervised learning on the tasks of the ICCV 2021 paper and writes a results folder:
``results.json``, ``results.md``, figures, curves and checkpoints. Here we run the ``smoke``
profile of the compressed-sensing task (seconds: two epochs of a tiny network, so the numbers
mean nothing) and read that folder back.
"""

# %%
# Run the smoke profile
# ---------------------
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from deepinv_ei.experiments.reproduce import LABELS, RunConfig, run

out = Path(tempfile.mkdtemp()) / "iccv_smoke"
cfg = RunConfig(
    tasks=("cs",), methods=("pinv", "mc", "ei", "sup"), profile="smoke", out=out, verbose=False
)
run(cfg)
print(sorted(p.name for p in out.iterdir()))

# %%
# ``results.json``
# ----------------
# One entry per task and method: PSNR (mean and standard deviation over the test images), SSIM,
# training seconds, the test-PSNR curve against training time and the loss history; and what
# produced them (profile, seed, settings, package versions).
results = json.loads((out / "results.json").read_text())
print("profile:", results["profile"], " seed:", results["seed"], " device:", results["device"])
for method, entry in results["cs"].items():
    print(
        f"{LABELS.get(method, method):12s} PSNR {entry['psnr']:6.2f} ± {entry['psnr_std']:.2f} dB"
        f"   SSIM {entry['ssim']:.3f}   training {entry['train_seconds']:.1f} s"
    )

# %%
# The PSNR table and the learning curves
# --------------------------------------
# ``curve`` holds ``[epoch, training seconds, test PSNR]`` triples measured during training.
methods = list(results["cs"])
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.2))
ax0.bar(
    [LABELS.get(m, m) for m in methods],
    [results["cs"][m]["psnr"] for m in methods],
    yerr=[results["cs"][m]["psnr_std"] for m in methods],
    color="tab:blue",
)
ax0.set_ylabel("test PSNR (dB)")
ax0.set_title("compressed sensing, smoke profile")
for method in methods:
    curve = results["cs"][method].get("curve") or []
    if curve:
        _, seconds, psnr = zip(*curve, strict=True)
        ax1.plot(seconds, psnr, "o-", label=LABELS.get(method, method))
ax1.set_xlabel("training seconds")
ax1.set_ylabel("test PSNR (dB)")
ax1.legend()
fig.tight_layout()

# %%
# The figure written by the run
# -----------------------------
# ``fig1_cs.png``: ground truth and each method on the first test image.
fig, ax = plt.subplots(figsize=(9, 2.5))
ax.imshow(plt.imread(out / "fig1_cs.png"))
ax.set_axis_off()
fig.tight_layout()

# %%
# ``results.md`` holds the same tables in Markdown, with the paper's values beside ours:
print((out / "results.md").read_text()[:1200])
plt.show()
