r"""
Equivariant imaging for inpainting in a deepinv Trainer
=======================================================

Inpainting with one fixed mask has a large nullspace: the missing pixels. Measurement
consistency alone, :math:`\|A f(y) - y\|^2`, never sees them, so a network trained on it leaves
the holes as they are. Natural images are (approximately) invariant to shifts, and the mask is
not, so the EI loss

.. math::

    \|A f(y) - y\|^2 + \alpha \, \|f(A T_g f(y)) - T_g f(y)\|^2

teaches the network to fill them, from the masked images alone (no ground truth). We train the
paper's residual UNet :math:`f(y) = G(A^\dagger y)` with :class:`deepinv.Trainer` on small
photographs for a few hundred steps, then compare with the masked input on test images.
"""

# %%
# Data and physics
# ----------------
# Photographs shipped with scikit-image and scikit-learn (no download), 32x32 crops, and one
# inpainting mask keeping 70 % of the pixels, the same for every image.
import time

import deepinv as dinv
import matplotlib.pyplot as plt
import torch

from deepinv_ei.data import natural_images
from deepinv_ei.loss import equivariant_imaging
from deepinv_ei.models import EIUNet, ei_reconstructor
from deepinv_ei.transforms import Shift

torch.manual_seed(0)
images = natural_images(size=32, n_train=48, n_test=4, seed=0)
physics = dinv.physics.Inpainting(
    img_size=(3, 32, 32), mask=0.7, rng=torch.Generator().manual_seed(0)
)
print(images.name, tuple(images.train.shape), tuple(images.test.shape))

# %%
# The reconstructor and the EI loss
# ---------------------------------
# ``EIUNet(zero_init=True)`` starts at :math:`G = \mathrm{Id}`, so :math:`f = A^\dagger` at step
# 0. :func:`~deepinv_ei.loss.equivariant_imaging` returns the pair ``[MC, alpha * EI]``; the
# group is circular shifts with one random shift per image (:class:`~deepinv_ei.transforms.Shift`).
model = ei_reconstructor(EIUNet(in_channels=3, width=8, scales=3, batch_norm=False, zero_init=True))
losses = equivariant_imaging(
    transform=Shift(n_trans=1, rng=torch.Generator().manual_seed(1)), alpha=1.0
)
print([type(loss).__name__ for loss in losses])

# %%
# Training with deepinv's Trainer
# -------------------------------
# ``online_measurements=True``: the loader yields clean images and the Trainer measures them; the
# losses only ever see ``y``. The test set's ground truth is used for the PSNR printed here only.
train_loader = torch.utils.data.DataLoader(images.train, batch_size=8, shuffle=True)
trainer = dinv.Trainer(
    model=model,
    physics=physics,
    optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
    train_dataloader=train_loader,
    losses=losses,
    epochs=50,
    online_measurements=True,
    save_path=None,
    device="cpu",
    verbose=False,
    show_progress_bar=False,
    metrics=[],
    non_blocking_transfers=False,
)
start = time.perf_counter()
model = trainer.train()
print(f"trained {trainer.epochs} epochs in {time.perf_counter() - start:.1f} s")

# %%
# Results on test images
# ----------------------
# MC alone would give exactly :math:`A^\dagger y` here (the missing pixels receive no gradient);
# EI fills them in.
model.eval()
x = images.test
y = physics(x)
with torch.no_grad():
    x_ei = model(y, physics)
psnr = dinv.metric.PSNR()
print(
    f"PSNR  A†y: {psnr(physics.A_dagger(y), x).mean():.2f} dB   EI: {psnr(x_ei, x).mean():.2f} dB"
)

fig, axes = plt.subplots(3, 4, figsize=(8, 6.3))
for j in range(4):
    for i, (img, title) in enumerate(((x, "ground truth"), (y, "measured (A†y)"), (x_ei, "EI"))):
        axes[i, j].imshow(img[j].clamp(0, 1).permute(1, 2, 0).numpy())
        axes[i, j].set_axis_off()
        if j == 0:
            axes[i, j].set_title(title, loc="left", fontsize=10)
fig.tight_layout()

# %%
# Training curves: the two terms logged apart by the Trainer.
fig, ax = plt.subplots(figsize=(6, 3))
for name, history in trainer.loss_history.items():
    ax.semilogy(history, label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.legend()
fig.tight_layout()
plt.show()
