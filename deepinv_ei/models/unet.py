r"""The residual UNet of Chen, Tachella & Davies (ICCV 2021) and the reconstructor built on it.

The EI paper reconstructs with :math:`f(y) = G(A^\dagger y)` where :math:`G(u) = u + \mathrm{UNet}(u)`.
Its UNet is exactly :class:`deepinv.models.UNet` with four scales: encoder widths
:math:`w, 2w, 4w, 8w` (64/128/256/512 in the paper), three :math:`2\times 2` max-pools,
``[conv3x3 -> BN -> ReLU] x 2`` blocks, nearest :math:`\times 2` upsampling followed by
``conv3x3 -> BN -> ReLU``, skip concatenation and a final :math:`1\times 1` convolution
(8.56 M parameters for one channel at :math:`w = 64`). We therefore reuse deepinv's network and
only add what the paper's training needs: the width as a parameter and the option to start from
:math:`G = \mathrm{Id}`.
"""

from __future__ import annotations

import deepinv as dinv
import torch


class EIUNet(dinv.models.UNet):
    r"""Residual UNet :math:`G(u) = u + \mathrm{UNet}(u)` of the EI paper.

    :param in_channels: image channels (1 for CT and CS, 3 for RGB inpainting).
    :param width: channels of the first scale :math:`w`; scale :math:`k` has :math:`2^k w`.
        The paper uses 64; small widths make CPU runs affordable.
    :param scales: number of scales (the paper: 4, i.e. three max-pools).
    :param batch_norm: batch normalisation after every convolution but the last (paper: on).
    :param zero_init: zero the final :math:`1\times 1` convolution so that :math:`G = \mathrm{Id}`
        and :math:`f = A^\dagger` at step 0 (see the models documentation for why short runs
        want it).

    :Examples:

    >>> import torch
    >>> from deepinv_ei.models import EIUNet
    >>> G = EIUNet(in_channels=1, width=8, zero_init=True)
    >>> u = torch.rand(2, 1, 32, 32)
    >>> bool(torch.equal(G(u), u))
    True
    """

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 64,
        scales: int = 4,
        batch_norm: bool = True,
        zero_init: bool = False,
    ):
        for name, value in (("in_channels", in_channels), ("width", width), ("scales", scales)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if scales < 2:
            raise ValueError(f"scales must be at least 2, got {scales}")
        super().__init__(
            in_channels=in_channels,
            out_channels=in_channels,
            residual=True,
            batch_norm=batch_norm,
            channels_per_scale=[width * 2**k for k in range(scales)],
        )
        self.width = width
        if zero_init:
            # f = A^dagger at step 0: training starts from the linear reconstruction.
            torch.nn.init.zeros_(self.Conv_1x1.weight)
            if self.Conv_1x1.bias is not None:
                torch.nn.init.zeros_(self.Conv_1x1.bias)

    def forward(self, x: torch.Tensor, sigma=None, **kwargs) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"EIUNet expects (B, {self.in_channels}, H, W) tensors, got shape {tuple(x.shape)}"
            )
        return super().forward(x, sigma, **kwargs)


def ei_reconstructor(backbone: torch.nn.Module) -> dinv.models.ArtifactRemoval:
    r"""The EI reconstructor :math:`f(y) = G(A^\dagger y)` (FBPConvNet-style, ``mode="pinv"``).

    :param backbone: the network :math:`G`, e.g. :class:`EIUNet`.
    :return: a :class:`deepinv.models.Reconstructor` called as ``f(y, physics)``.

    :Examples:

    >>> import torch, deepinv as dinv
    >>> from deepinv_ei.models import EIUNet, ei_reconstructor
    >>> physics = dinv.physics.Inpainting(img_size=(1, 16, 16), mask=0.7)
    >>> f = ei_reconstructor(EIUNet(width=4, zero_init=True))
    >>> y = physics(torch.rand(1, 1, 16, 16))
    >>> bool(torch.allclose(f(y, physics), physics.A_dagger(y)))
    True
    """
    if not isinstance(backbone, torch.nn.Module):
        raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
    return dinv.models.ArtifactRemoval(backbone, mode="pinv")
