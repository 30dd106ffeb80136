r"""Stein's unbiased risk estimates (SURE) with noise levels read from the physics.

For measurements :math:`y` of :math:`Ax` with :math:`m` entries per sample and a reconstructor
:math:`f`, deepinv's :class:`~deepinv.loss.SureGaussianLoss`,
:class:`~deepinv.loss.SurePoissonLoss` and :class:`~deepinv.loss.SurePGLoss` estimate, per
sample and from :math:`y` alone, the clean-measurement error

.. math::

    \mathbb{E}\,\frac{1}{m}\|A f(y) - Ax\|_2^2

(exactly for every finite-difference step :math:`\tau` when :math:`f` is affine in :math:`y`).
The losses here are those classes, with the same values and options (``unsure``, ``B``...),
plus the noise levels: a level left at ``None`` is read, at every call, from the physics'
noise model (or a given one), and may be a scalar or one value per sample. The steps, levels
and noise model are checked at construction, and the physics may be a linear ODL operator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from deepinv.loss import Loss, SureGaussianLoss, SurePGLoss, SurePoissonLoss
from deepinv.physics import GaussianNoise, PoissonGaussianNoise, PoissonNoise

from .base import as_physics

__all__ = [
    "SureLoss",
    "SureGaussian",
    "SurePoisson",
    "SurePoissonGaussian",
    "SURE_LOSSES",
    "sure_class",
    "sure_loss",
]

Level = float | torch.Tensor | None


def _as_level(value: Any, what: str, like: torch.Tensor | None = None) -> torch.Tensor:
    """A finite, non-negative noise level: a scalar or one per sample of ``like``, then
    shaped to broadcast against ``like``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        raise TypeError(f"{what} must be a float or a tensor, got {type(value).__name__}")
    level = torch.as_tensor(value)
    shown = level.tolist() if level.numel() <= 8 else f"{level.flatten()[:8].tolist()}..."
    if level.is_complex() or not bool(torch.isfinite(level).all()):
        raise ValueError(f"{what} must be finite (a real number >= 0), got {shown}")
    if torch.any(level < 0):
        raise ValueError(f"{what} must be non-negative, got {shown}")
    if like is None:  # construction time: the batch size is not known yet
        return level
    if level.numel() not in (1, like.shape[0]):
        raise ValueError(
            f"{what} must be a scalar or have one value per sample ({like.shape[0]}), "
            f"got shape {tuple(level.shape)}"
        )
    return level.to(like).reshape(-1, *([1] * (like.ndim - 1)))


def _check_step(owner: str, key: str, tau: Any) -> None:
    if isinstance(tau, bool) or not isinstance(tau, (int, float)):
        raise TypeError(f"{owner}: {key} must be a positive finite float, got {type(tau).__name__}")
    if not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"{owner}: {key} must be a positive finite float, got {tau!r}")


class SureLoss(Loss):
    r"""Base of the SURE losses: deepinv's estimate, with the levels read from the physics.

    A subclass pairs this class with one of deepinv's SURE losses (which computes the value)
    and names the noise model and levels it needs (:attr:`noise_class`, :attr:`levels`) and
    the name of its finite-difference step (:attr:`step`). A level given at construction wins;
    a level left at ``None`` is read, at every call, from ``noise_model`` if given, else from
    ``physics.noise_model``, which must then be an instance of :attr:`noise_class`. With
    deepinv's ``unsure=True`` the levels are learnt from the given starting values instead.

    :param noise_model: a deepinv noise model to read the levels from (default: the physics').
    :param options: the levels and deepinv's arguments (``tau``, ``rng``...), by keyword.
    """

    noise_class: type = torch.nn.Module
    levels: tuple[str, ...] = ()
    step: str = "tau"

    def __init__(self, noise_model: torch.nn.Module | None = None, **options: Any):
        owner = type(self).__name__
        if noise_model is not None and not isinstance(noise_model, self.noise_class):
            raise TypeError(
                f"{owner} needs a {self.noise_class.__name__} noise model, "
                f"got {type(noise_model).__name__}"
            )
        rng = options.get("rng")
        if rng is not None and not isinstance(rng, torch.Generator):
            raise TypeError(f"rng must be a torch.Generator or None, got {type(rng).__name__}")
        for key in ("tau", "tau1", "tau2"):
            if key in options:
                _check_step(owner, key, options[key])
        given = {key: options[key] for key in self.levels}
        for key, value in given.items():
            if value is not None:
                _as_level(value, key)  # validate early
        missing = [key for key, value in given.items() if value is None]
        if options.get("unsure") and missing:
            raise ValueError(f"{owner}(unsure=True) learns the levels from given values: {missing}")
        # deepinv's constructor needs numbers; the levels left at None are set at every call.
        super().__init__(**{**options, **dict.fromkeys(missing, 0.0)})
        self.noise_model = noise_model
        self.given_levels = given

    def _noise_source(self, physics: Any) -> Any:
        source = self.noise_model
        if source is None:
            source = getattr(physics, "noise_model", None)
        if not isinstance(source, self.noise_class):
            raise ValueError(
                f"{type(self).__name__} needs its levels ({', '.join(self.levels)}) or a "
                f"{self.noise_class.__name__} noise model; physics.noise_model is "
                f"{type(source).__name__}"
            )
        if isinstance(source, PoissonNoise) and not bool(source.normalize):
            raise ValueError(
                "PoissonNoise(normalize=False) measures Poisson(Ax/gain), whose mean is not "
                "Ax; SURE needs normalize=True"
            )
        return source

    def resolve_levels(self, physics: Any, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The noise levels for this call, each broadcastable to ``y``."""
        out = {}
        for key, value in self.given_levels.items():
            if value is None:
                value = getattr(self._noise_source(physics), key)
            out[key] = _as_level(value, key, like=y)
        return out

    def use_levels(self, **levels: torch.Tensor) -> None:
        """Hand this call's levels to deepinv's loss (hook for subclasses)."""
        raise NotImplementedError

    def forward(
        self, y: torch.Tensor, x_net: torch.Tensor, physics: Any, model: Callable, **kwargs: Any
    ) -> torch.Tensor:
        r"""Estimate :math:`\frac1m\|A f(y) - Ax\|^2` for each sample.

        :param torch.Tensor y: noisy measurements, shape ``(B, ...)``.
        :param torch.Tensor x_net: the reconstruction :math:`f(y)`.
        :param physics: a deepinv physics or a linear ODL operator.
        :param model: the reconstructor, called as ``model(y, physics)``.
        :return: shape ``(B,)``.
        """
        physics = as_physics(physics)
        y_hat_shape = physics.A(x_net).shape
        if y_hat_shape != y.shape:
            raise ValueError(
                f"physics.A(x_net) has shape {tuple(y_hat_shape)} but y has shape "
                f"{tuple(y.shape)}; expected equal shapes"
            )
        if not getattr(self, "unsure", False):
            self.use_levels(**self.resolve_levels(physics, y))
        return super().forward(y=y, x_net=x_net, physics=physics, model=model, **kwargs)


class SureGaussian(SureLoss, SureGaussianLoss):
    r"""SURE for Gaussian noise :math:`y = Ax + \mathcal{N}(0, \sigma^2 I)`:
    :class:`deepinv.loss.SureGaussianLoss` with :math:`\sigma` read from the physics.

    .. math::

        \frac{1}{m}\|A f(y) - y\|^2 - \sigma^2
        + \frac{2\sigma^2}{m\tau} b^\top\big(A f(y+\tau b) - A f(y)\big),
        \quad b \sim \mathcal{N}(0, I).

    :param sigma: noise standard deviation (scalar or one per sample); ``None`` reads
        ``noise_model.sigma`` (a :class:`deepinv.physics.GaussianNoise`).
    :param float tau: finite-difference step, about 1% of the measurements' scale.
    :param noise_model: the noise model to read :math:`\sigma` from (default: the physics').
    :param torch.Generator rng: generator of the Monte-Carlo probes.
    :param kwargs: further arguments of deepinv's loss (``B``, ``unsure``...).

    :Example:

    >>> import torch, deepinv as dinv
    >>> from deepinv_ei.loss import SureGaussian
    >>> physics = dinv.physics.Denoising(dinv.physics.GaussianNoise(0.1))
    >>> loss = SureGaussian()  # sigma read from physics.noise_model
    >>> y = physics(torch.rand(4, 1, 8, 8))
    >>> model = lambda y, physics: 0.5 * y
    >>> loss(y=y, x_net=model(y, physics), physics=physics, model=model).shape
    torch.Size([4])
    """

    noise_class = GaussianNoise
    levels = ("sigma",)

    def __init__(
        self,
        sigma: Level = None,
        tau: float = 1e-2,
        noise_model: GaussianNoise | None = None,
        rng: torch.Generator | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("B", torch.nn.Identity())  # deepinv's default, a lambda, won't pickle
        super().__init__(noise_model, sigma=sigma, tau=tau, rng=rng, **kwargs)

    def use_levels(self, sigma: torch.Tensor) -> None:
        # deepinv adds sigma^2 to per-sample values of shape (B,)
        self.sigma2 = sigma.flatten() ** 2


class SurePoisson(SureLoss, SurePoissonLoss):
    r"""SURE (PURE) for Poisson noise :math:`y = \gamma z`, :math:`z \sim \mathcal{P}(Ax/\gamma)`:
    :class:`deepinv.loss.SurePoissonLoss` with :math:`\gamma` read from the physics.

    .. math::

        \frac{1}{m}\|A f(y) - y\|^2 - \frac{\gamma}{m} 1^\top y
        + \frac{2\gamma}{m\tau}(b \odot y)^\top\big(A f(y+\tau b) - A f(y)\big),
        \quad b \in \{\pm1\}^m.

    :param gain: the gain :math:`\gamma` (scalar or one per sample); ``None`` reads
        ``noise_model.gain`` (a :class:`deepinv.physics.PoissonNoise` with ``normalize=True``).
    :param float tau: finite-difference step.
    :param noise_model: the noise model to read :math:`\gamma` from (default: the physics').
    :param torch.Generator rng: generator of the Monte-Carlo probes.
    """

    noise_class = PoissonNoise
    levels = ("gain",)

    def __init__(
        self,
        gain: Level = None,
        tau: float = 1e-2,
        noise_model: PoissonNoise | None = None,
        rng: torch.Generator | None = None,
    ):
        super().__init__(noise_model, gain=gain, tau=tau, rng=rng)

    def use_levels(self, gain: torch.Tensor) -> None:
        self.gain = gain  # deepinv multiplies it with y entrywise


class SurePoissonGaussian(SureLoss, SurePGLoss):
    r"""SURE (PG-URE) for mixed noise :math:`y = \gamma z + \epsilon`:
    :class:`deepinv.loss.SurePGLoss` with :math:`\gamma, \sigma` read from the physics.

    Here :math:`z \sim \mathcal{P}(Ax/\gamma)` and :math:`\epsilon \sim \mathcal{N}(0, \sigma^2 I)`:

    .. math::

        \frac{1}{m}\|h(y) - y\|^2 - \frac{\gamma}{m} 1^\top y - \sigma^2
        + \frac{2}{m\tau_1} (b_1 \odot (\gamma y + \sigma^2))^\top (h(y+\tau_1 b_1) - h(y))
        - \frac{2\gamma\sigma^2}{m\tau_2^2} b_2^\top (h(y+\tau_2 b_2) + h(y-\tau_2 b_2) - 2h(y))

    with :math:`h = A f`, :math:`b_1` uniform in :math:`\{\pm 1\}^m` and :math:`b_2` i.i.d. with
    :math:`\mathbb{E} b_2 = 0`, :math:`\mathbb{E} b_2^2 = \mathbb{E} b_2^3 = 1`. The
    second-derivative term costs two extra reconstructions; it vanishes for reconstructors
    that are piecewise linear in :math:`y` (ReLU networks) and is switched off with
    ``second_derivative=False``. deepinv's loss takes one :math:`\gamma` and one
    :math:`\sigma` for the whole batch: levels that differ between samples raise.

    :param gain: :math:`\gamma`; ``None`` reads ``noise_model.gain``.
    :param sigma: :math:`\sigma`; ``None`` reads ``noise_model.sigma`` (a
        :class:`deepinv.physics.PoissonGaussianNoise`).
    :param float tau1: step of the first-order divergence.
    :param float tau2: step of the second-order divergence.
    :param bool second_derivative: include the second-order term.
    :param noise_model: the noise model to read the levels from (default: the physics').
    :param torch.Generator rng: generator of the Monte-Carlo probes.
    :param kwargs: further arguments of deepinv's loss (``unsure``...).
    """

    noise_class = PoissonGaussianNoise
    levels = ("gain", "sigma")
    step = "tau1"

    def __init__(
        self,
        gain: Level = None,
        sigma: Level = None,
        tau1: float = 1e-2,
        tau2: float = 1e-2,
        second_derivative: bool = True,
        noise_model: PoissonGaussianNoise | None = None,
        rng: torch.Generator | None = None,
        **kwargs: Any,
    ):
        levels = {"gain": gain, "sigma": sigma}
        steps = {"tau1": tau1, "tau2": tau2, "second_derivative": second_derivative}
        super().__init__(noise_model, **levels, **steps, rng=rng, **kwargs)

    def use_levels(self, gain: torch.Tensor, sigma: torch.Tensor) -> None:
        for key, level in (("gain", gain), ("sigma", sigma)):
            if bool((level != level.flatten()[0]).any()):
                raise ValueError(
                    f"SurePoissonGaussian: deepinv's SurePGLoss takes one {key} for the whole "
                    f"batch, got {level.flatten()[:8].tolist()}"
                )
        self.gain = gain.flatten()[0]
        self.sigma2 = sigma.flatten()[0] ** 2


#: SURE losses by noise name; tests and :func:`sure_loss` go through this registry.
SURE_LOSSES: dict[str, type[SureLoss]] = {
    "gaussian": SureGaussian,
    "poisson": SurePoisson,
    "poisson_gaussian": SurePoissonGaussian,
}


def sure_class(noise: str | torch.nn.Module) -> type[SureLoss]:
    r"""The SURE loss class for a noise given by name or as a deepinv noise model.

    :param noise: ``"gaussian"``, ``"poisson"``, ``"poisson_gaussian"``, or a
        :class:`~deepinv.physics.GaussianNoise`, :class:`~deepinv.physics.PoissonNoise` or
        :class:`~deepinv.physics.PoissonGaussianNoise` instance.
    :raises ValueError: for an unknown name.
    :raises TypeError: for another noise model.
    """
    if isinstance(noise, str):
        if noise not in SURE_LOSSES:
            raise ValueError(f"noise must be one of {sorted(SURE_LOSSES)}, got {noise!r}")
        return SURE_LOSSES[noise]
    for loss_class in SURE_LOSSES.values():
        if isinstance(noise, loss_class.noise_class):
            return loss_class
    raise TypeError(
        "noise must be a name in "
        f"{sorted(SURE_LOSSES)} or one of "
        f"{[c.noise_class.__name__ for c in SURE_LOSSES.values()]}, got {type(noise).__name__}"
    )


def sure_loss(noise: str | torch.nn.Module, **kwargs: Any) -> SureLoss:
    r"""The SURE loss for a noise given by name or as a deepinv noise model.

    :param noise: a name (levels then read from the physics) or a noise model (levels read
        from it at every call), see :func:`sure_class`.
    :param kwargs: passed to the loss (``tau``, ``rng``, explicit levels, ...).

    >>> import deepinv as dinv
    >>> from deepinv_ei.loss import sure_loss
    >>> type(sure_loss(dinv.physics.PoissonNoise(0.1))).__name__
    'SurePoisson'
    """
    loss_class = sure_class(noise)
    if isinstance(noise, str):
        return loss_class(**kwargs)
    return loss_class(noise_model=noise, **kwargs)
