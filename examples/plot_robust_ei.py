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
train EI and Robust EI on noisy compressed sensing of digits.
"""

# %%
# SURE tracks the true error
# --------------------------
# Reconstructors :math:`f_c(y) = c\,A^\dagger y`: the SURE value follows the true
# clean-measurement error as :math:`c` varies.
import deepinv as dinv
import matplotlib.pyplot as plt
import torch

from deepinv_ei.data import digits
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
# EI and Robust EI on noisy compressed sensing
# --------------------------------------------
# 16x16 digits, a Gaussian operator with 128 rows (2x compression), Gaussian noise
# :math:`\sigma = 0.1`. Both runs start from :math:`f = A^\dagger` and take the same steps.
data = digits(size=16, n_train=256, n_test=16, seed=0)
physics = dinv.physics.CompressedSensing(
    m=128,
    img_size=(1, 16, 16),
    noise_model=dinv.physics.GaussianNoise(0.1, rng=torch.Generator().manual_seed(3)),
    rng=torch.Generator().manual_seed(0),
)


def train(losses, seed=0):
    torch.manual_seed(seed)
    model = ei_reconstructor(EIUNet(1, width=8, scales=2, batch_norm=False, zero_init=True))
    trainer = dinv.Trainer(
        model=model,
        physics=physics,
        optimizer=torch.optim.Adam(model.parameters(), lr=2e-3),
        train_dataloader=torch.utils.data.DataLoader(data.train, batch_size=32, shuffle=True),
        losses=losses,
        epochs=12,
        online_measurements=True,
        save_path=None,
        device="cpu",
        verbose=False,
        show_progress_bar=False,
        metrics=[],
    )
    return trainer.train().eval()


transform = Shift(n_trans=1, rng=torch.Generator().manual_seed(1))
ei = train(equivariant_imaging(transform=transform, alpha=10.0))
rei = train(robust_equivariant_imaging(transform=transform, noise="gaussian", alpha=10.0))

x = data.test
y = physics(x)
psnr = dinv.metric.PSNR()
with torch.no_grad():
    results = {"A†y": physics.A_dagger(y), "EI": ei(y, physics), "Robust EI": rei(y, physics)}
for name, x_hat in results.items():
    print(f"{name:10s} PSNR {psnr(x_hat, x).mean():.2f} dB")

fig, axes = plt.subplots(1, 4, figsize=(8, 2.4))
for ax, (name, img) in zip(axes, {"ground truth": x, **results}.items(), strict=True):
    ax.imshow(torch.cat(list(img[:4, 0].clamp(0, 1)), dim=1).numpy(), cmap="gray")
    ax.set_title(f"{name}" + ("" if name == "ground truth" else f"\n{psnr(img, x).mean():.1f} dB"))
    ax.set_axis_off()
fig.tight_layout()
plt.show()
