r"""The measurement consistency (MC) loss, accepting ODL operators as physics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .base import NamedLoss, as_physics, per_sample

__all__ = ["MCLoss"]


class MCLoss(NamedLoss):
    r"""Measurement consistency loss :math:`\ell(A f(y), y)`, per sample.

    With the default metric it is :math:`\frac{1}{m}\|A\hat x - y\|_2^2` for each sample,
    shape ``(B,)`` (deepinv's :class:`deepinv.loss.MCLoss` averages over the batch). On
    its own it cannot learn the nullspace of :math:`A`; the EI term supplies it.

    :param metric: ``metric(A x_net, y)``, a scalar or one value per sample; ``None``
        for the per-sample mean squared error.
    :param str name: log name for :class:`deepinv.Trainer`; ``None`` for ``"MCLoss"``.

    :Example:

    >>> import torch, deepinv as dinv
    >>> from deepinv_ei.loss import MCLoss
    >>> physics = dinv.physics.Inpainting(img_size=(1, 4, 4), mask=0.5)
    >>> x = torch.rand(2, 1, 4, 4)
    >>> MCLoss()(x_net=x, y=physics(x), physics=physics).abs().max().item()
    0.0
    """

    def __init__(
        self,
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if metric is not None and not callable(metric):
            raise TypeError(f"metric must be callable or None, got {type(metric).__name__}")
        self.metric = metric
        self._finalise_name()

    def forward(self, y: torch.Tensor, x_net: torch.Tensor, physics: Any, **kwargs: Any):
        r"""Compute the MC loss.

        :param torch.Tensor y: measurements, shape ``(B, ...)``.
        :param torch.Tensor x_net: reconstruction :math:`f(y)`.
        :param physics: a deepinv physics or a linear ODL operator.
        :return: the loss of each sample, shape ``(B,)``.
        """
        physics = as_physics(physics)
        y_hat = physics.A(x_net)
        if y_hat.shape != y.shape:
            raise ValueError(
                f"physics.A(x_net) has shape {tuple(y_hat.shape)} but y has shape "
                f"{tuple(y.shape)}; expected equal shapes"
            )
        if self.metric is None:
            return (y_hat - y).pow(2).reshape(y.shape[0], -1).mean(1)
        return per_sample(self.metric(y_hat, y), y.shape[0], "metric")
