r"""
Mixing deepinv-ei's transforms with deepinv's
=============================================

The group actions of :mod:`deepinv_ei.transforms` are :class:`deepinv.transform.Transform`
subclasses, so they mix with deepinv's own: compose them with ``*``, pass them to deepinv's
:class:`deepinv.loss.EILoss`, or pass deepinv's transforms to :class:`deepinv_ei.loss.EILoss`.
What ours add: one random group element per image (deepinv's share one per copy across the
batch), and exact inverses.
"""

# %%
# Composition with ``*``
# ----------------------
# ``Shift() * dinv.transform.Reflect()``: a random shift, then a random flip, per image.
import deepinv as dinv
import matplotlib.pyplot as plt
import torch

from deepinv_ei.data import natural_images
from deepinv_ei.loss import EILoss
from deepinv_ei.transforms import Rotate, Shift

x = natural_images(size=64, n_train=4, n_test=1).train[:4]
mixed = Shift(rng=torch.Generator().manual_seed(0)) * dinv.transform.Reflect(
    dim=[-1], rng=torch.Generator().manual_seed(1)
)
x_mixed = mixed(x)
print(type(mixed).__name__, tuple(x.shape), "->", tuple(x_mixed.shape))

# %%
# One element per image, and exact inverses
# -----------------------------------------
# Our :class:`~deepinv_ei.transforms.Shift` draws a shift for each image (the offsets printed
# below), and ``inverse`` undoes ``transform`` exactly: shifts are pixel permutations.
T = Shift(rng=torch.Generator().manual_seed(2))
params = T.get_params(x)
print({name: value.tolist() for name, value in params.items()})
assert torch.equal(T.inverse(T.transform(x, **params), **params), x)

fig, axes = plt.subplots(2, 4, figsize=(8, 4.2))
for j in range(4):
    axes[0, j].imshow(x[j].permute(1, 2, 0).numpy())
    axes[1, j].imshow(x_mixed[j].clamp(0, 1).permute(1, 2, 0).numpy())
    axes[0, j].set_axis_off()
    axes[1, j].set_axis_off()
axes[0, 0].set_title("x", loc="left")
axes[1, 0].set_title("Shift() * Reflect(): one element per image", loc="left")
fig.tight_layout()

# %%
# In each other's losses
# ----------------------
# deepinv's EI loss with our shifts, and our EI loss with deepinv's quarter turns (plus a
# composition): the same call, one value per sample from ours.
physics = dinv.physics.Inpainting(
    img_size=(3, 64, 64), mask=0.7, rng=torch.Generator().manual_seed(0)
)
y = physics(x)


def model(y, physics):
    return physics.A_adjoint(y)


x_net = model(y, physics)
theirs = dinv.loss.EILoss(transform=Shift(n_trans=2))
ours = EILoss(transform=dinv.transform.Rotate(multiples=90), weight=1.0)
ours_mixed = EILoss(transform=Rotate(multiples=90) * dinv.transform.Shift(), weight=1.0)
print("deepinv EILoss + our Shift:", float(theirs(x_net=x_net, physics=physics, model=model)))
print("our EILoss + deepinv Rotate:", ours(x_net=x_net, physics=physics, model=model).tolist())
print(
    "our EILoss + Rotate * Shift:", ours_mixed(x_net=x_net, physics=physics, model=model).tolist()
)
plt.show()
