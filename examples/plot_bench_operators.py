r"""
The operator benchmark at a small size
======================================

``benchmarks/bench_operators.py`` (``python -m deepinv_ei.experiments.bench_operators``)
measures forward, transpose and forward+backward throughput of CT operators as torch modules:
this project's ``"matrix"`` and ``"astra"`` backends of :class:`~deepinv_ei.odl.OperatorModule`
against ``odl.contrib.torch.OperatorModule``, ASTRA called per sample, and
``deepinv.physics.Tomography``. The command runs each method in its own process at 128x128/50
views and 256x256/180 views; here we call its worker in this process at 64x64 with 30 views, so
that it runs in seconds (the figures measured at full size are in :doc:`/odl_operators`).
"""

# %%
# Measure
# -------
# :func:`~deepinv_ei.experiments.bench_operators.run_worker` builds one method's operator and
# times it (median of ``repeats`` calls after a warm-up) for each batch size.
import matplotlib.pyplot as plt
import numpy as np

from deepinv_ei.experiments.bench_operators import METHODS, format_table, run_worker

size, views, batches = 64, 30, [1, 8]
results = [run_worker(method, size, views, batches, repeats=3, device="cpu") for method in METHODS]
# Peak memory is only meaningful with one process per method (as the command does): not shown.
print(format_table(results, batches))

# %%
# Throughput at batch 8
# ---------------------
modes = ("forward", "transpose", "fwd+bwd")
fig, ax = plt.subplots(figsize=(8, 3.4))
width = 0.8 / len(results)
for i, r in enumerate(results):
    values = [r["batches"]["8"][mode] for mode in modes]
    ax.bar(np.arange(len(modes)) + i * width, values, width, label=r["method"])
ax.set_xticks(np.arange(len(modes)) + 0.4 - width / 2, modes)
ax.set_yscale("log")
ax.set_ylabel("images / s (batch 8)")
ax.set_title(f"{size}x{size}, {views} views, CPU")
ax.legend(fontsize=8, ncols=2)
fig.tight_layout()
plt.show()
