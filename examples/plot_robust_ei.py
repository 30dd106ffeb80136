r"""
Robust EI on noisy measurements
===============================

With noisy measurements :math:`y = Ax + \epsilon`, measurement consistency
:math:`\|A f(y) - y\|^2` rewards a reconstructor that reproduces the noise. Robust EI (Chen,
Tachella & Davies, CVPR 2022) replaces it by Stein's unbiased risk estimate (SURE) of the clean
error :math:`\|A f(y) - Ax\|^2/m`, computed from :math:`y` alone, and re-noises the EI term:

.. math::

    \mathcal{L}_{\mathrm{REI}} = \mathrm{SURE}(f; y)
      + \alpha \, \|f(A T_g f(y) + \tilde\epsilon) - T_g f(y)\|^2 .

Here we check on a toy problem that SURE tracks the true error without seeing :math:`x`, then
train EI and Robust EI on noisy inpainting.
"""

# %%
# SURE tracks the true error
# --------------------------
# Reconstructors :math:`f_c(y) = c\,A^\dagger y`: the SURE value follows the true
# clean-measurement error as :math:`c` varies.
import deepinv as dinv
import matplotlib.pyplot as plt
import torch

from deepinv_ei.data import natural_images
from deepinv_ei.loss import equivariant_imaging, robust_equivariant_imaging, sure_loss
from deepinv_ei.models import EIUNet, ei_reconstructor
from deepinv_ei.transforms import Shift

g = torch.Generator().manual_seed(0)
A = torch.rand(12, 20, generator=g) / 20
x = 0.5 + torch.rand(2000, 20, generator=g)
toy = dinv.physics.LinearPhysics(
    A=lambda v: v @ A.T,
    A_adjoint=lambda w: w @ A,
    noise_model=dinv.physics.GaussianNoise(0.1, rng=torch.Generator().manual_seed(1)),
)
y = toy(x)
sure = sure_loss("gaussian", rng=torch.Generator().manual_seed(2))
cs, sures, trues = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5], [], []
for c in cs:
    f = lambda y, physics, c=c: c * physics.A_dagger(y)  # noqa: E731
    x_net = f(y, toy)
    sures.append(sure(y=y, x_net=x_net, physics=toy, model=f).mean().item())
    trues.append((toy.A(x_net) - toy.A(x)).pow(2).mean().item())
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(cs, trues, "o-", label="true error")
ax.plot(cs, sures, "x--", label="SURE (from y only)")
ax.set_xlabel("c in f(y) = c A†y")
ax.set_ylabel("clean-measurement error")
ax.legend()
fig.tight_layout()

# %%
# EI and Robust EI on noisy inpainting
# ------------------------------------
# 32x32 photographs, one mask keeping 70 % of the pixels, Gaussian noise :math:`\sigma = 0.1`.
# Plain EI's measurement-consistency term rewards reproducing the noise on the kept pixels;
# Robust EI's SURE term does not. Both runs start from :math:`f = A^\dagger` and take the same
# steps.
data = natural_images(size=32, n_train=48, n_test=4, seed=0)
physics = dinv.physics.Inpainting(
    img_size=(3, 32, 32),
    mask=0.7,
    noise_model=dinv.physics.GaussianNoise(0.1, rng=torch.Generator().manual_seed(3)),
    rng=torch.Generator().manual_seed(0),
)


def train(losses, seed=0):
    torch.manual_seed(seed)
    model = ei_reconstructor(EIUNet(3, width=8, scales=3, batch_norm=False, zero_init=True))
    trainer = dinv.Trainer(
        model=model,
        physics=physics,
        optimizer=torch.optim.Adam(model.parameters(), lr=2e-3),
        train_dataloader=torch.utils.data.DataLoader(data.train, batch_size=8, shuffle=True),
        losses=losses,
        epochs=30,
        online_measurements=True,
        save_path=None,
        device="cpu",
        verbose=False,
        show_progress_bar=False,
        metrics=[],
        non_blocking_transfers=False,
    )
    return trainer.train().eval()


ei = train(equivariant_imaging(transform=Shift(rng=torch.Generator().manual_seed(1)), alpha=1.0))
rei = train(
    robust_equivariant_imaging(
        transform=Shift(rng=torch.Generator().manual_seed(1)), noise="gaussian", alpha=1.0
    )
)

x = data.test
y = physics(x)
psnr = dinv.metric.PSNR()
with torch.no_grad():
    results = {"A†y": physics.A_dagger(y), "EI": ei(y, physics), "Robust EI": rei(y, physics)}
for name, x_hat in results.items():
    print(f"{name:10s} PSNR {psnr(x_hat, x).mean():.2f} dB")

fig, axes = plt.subplots(2, 4, figsize=(8, 4.4))
for col, (name, img) in enumerate({"ground truth": x, **results}.items()):
    for row in range(2):
        axes[row, col].imshow(img[row].clamp(0, 1).permute(1, 2, 0).numpy())
        axes[row, col].set_axis_off()
    label = "" if name == "ground truth" else f"\n{psnr(img, x).mean():.1f} dB"
    axes[0, col].set_title(name + label, fontsize=10)
fig.tight_layout()
plt.show()
