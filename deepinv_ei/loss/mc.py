r"""The measurement consistency (MC) loss, accepting ODL operators as physics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from deepinv.loss import Loss

from .base import as_physics, check_metric

__all__ = ["MCLoss"]


class MCLoss(Loss):
    r"""Measurement consistency loss :math:`\ell(A f(y), y)`; a drop-in for
    :class:`deepinv.loss.MCLoss`.

    With the default metric (:class:`torch.nn.MSELoss`, as in deepinv) it is
    :math:`\frac{1}{Bm}\sum_i\|A\hat x_i - y_i\|_2^2`, a scalar; it returns whatever the metric
    returns (one value per sample for :class:`deepinv.metric.MSE`). On its own it cannot learn
    the nullspace of :math:`A`; the EI term supplies it. Addition: the physics may be a
    linear ODL operator.

    :param metric: ``metric(A x_net, y)``; ``None`` for :class:`torch.nn.MSELoss`.

    :Example:

    >>> import torch, deepinv as dinv
    >>> from deepinv_ei.loss import MCLoss
    >>> physics = dinv.physics.Inpainting(img_size=(1, 4, 4), mask=0.5)
    >>> x = torch.rand(2, 1, 4, 4)
    >>> MCLoss()(x_net=x, y=physics(x), physics=physics).item()
    0.0
    >>> MCLoss(dinv.metric.MSE())(x_net=x, y=physics(x), physics=physics).shape
    torch.Size([2])
    """

    def __init__(
        self,
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ):
        super().__init__()
        self._name = "mc"
        self.metric = check_metric("MCLoss", metric)

    def forward(self, y: torch.Tensor, x_net: torch.Tensor, physics: Any, **kwargs: Any):
        r"""Compute the MC loss.

        :param torch.Tensor y: measurements, shape ``(B, ...)``.
        :param torch.Tensor x_net: reconstruction :math:`f(y)`.
        :param physics: a deepinv physics or a linear ODL operator.
        :return: ``metric(physics.A(x_net), y)``.
        """
        physics = as_physics(physics)
        y_hat = physics.A(x_net)
        if (
            isinstance(y_hat, torch.Tensor)
            and isinstance(y, torch.Tensor)
            and y_hat.shape != y.shape
        ):
            raise ValueError(
                f"physics.A(x_net) has shape {tuple(y_hat.shape)} but y has shape "
                f"{tuple(y.shape)}; expected equal shapes"
            )
        return self.metric(y_hat, y)
