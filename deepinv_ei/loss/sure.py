r"""Stein's unbiased risk estimates (SURE) of the measurement-domain error.

For measurements :math:`y` of :math:`\mu = Ax` with :math:`m` entries per sample and a
reconstructor :math:`f`, write :math:`h(y) = A f(y)`. Each loss below returns, per sample,
an estimate whose expectation over the noise (and over the Monte-Carlo probes
:math:`b`) is the clean-measurement error

.. math::

    \mathbb{E}\,\frac{1}{m}\|h(y) - \mu\|_2^2 ,

computed from :math:`y` alone. The divergences are estimated by finite differences along
random probes (Ramani et al., 2008):
:math:`\sum_i \partial_i h_i(y) \approx \frac{1}{\tau} b^\top (h(y+\tau b) - h(y))` with
:math:`\mathbb{E}\, b b^\top = I`.

- Gaussian, :math:`y = \mu + \epsilon`, :math:`\epsilon \sim \mathcal{N}(0, \sigma^2 I)`:

  .. math::

      \frac{1}{m}\|h(y) - y\|^2 - \sigma^2 + \frac{2\sigma^2}{m\tau} b^\top (h(y+\tau b) - h(y)),
      \quad b \sim \mathcal{N}(0, I).

  Exactly unbiased for every (weakly) differentiable :math:`h` as :math:`\tau \to 0`, and
  for every :math:`\tau` when :math:`h` is affine.

- Poisson, :math:`y = \gamma z`, :math:`z \sim \mathcal{P}(\mu/\gamma)`:

  .. math::

      \frac{1}{m}\|h(y) - y\|^2 - \frac{\gamma}{m} 1^\top y
      + \frac{2\gamma}{m\tau} (b \odot y)^\top (h(y+\tau b) - h(y)),
      \quad b \in \{\pm 1\}^m \text{ uniform}.

  Uses :math:`\mathbb{E}[\mu_i h_i(y)] = \mathbb{E}[y_i h_i(y - \gamma e_i)]` to first order,
  so it is exactly unbiased when :math:`h` is affine.

- Poisson--Gaussian, :math:`y = \gamma z + \epsilon` (Le Montagner et al., 2014):

  .. math::

      \frac{1}{m}\|h(y) - y\|^2 - \frac{\gamma}{m} 1^\top y - \sigma^2
      + \frac{2}{m\tau_1} (b_1 \odot (\gamma y + \sigma^2))^\top (h(y+\tau_1 b_1) - h(y))
      - \frac{2\gamma\sigma^2}{m\tau_2^2} b_2^\top (h(y+\tau_2 b_2) + h(y-\tau_2 b_2) - 2h(y)),

  with :math:`b_1 \sim \mathcal{N}(0, I)` and :math:`b_2` i.i.d. with
  :math:`\mathbb{E} b_2 = 0`, :math:`\mathbb{E} b_2^2 = \mathbb{E} b_2^3 = 1`, so that the
  last term estimates :math:`\sum_i \partial_{ii}^2 h_i` (a Rademacher :math:`b_2` has
  :math:`\mathbb{E} b_2^3 = 0` and would estimate zero).

The constants (:math:`-\sigma^2`, :math:`-\frac{\gamma}{m}1^\top y`) make the estimate
target :math:`\frac1m\|h(y)-\mu\|^2` itself rather than :math:`\frac1m\|h(y)-y\|^2`; note
that the CVPR 2022 formula for the mixed case as often quoted omits
:math:`-\frac{\gamma}{m}1^\top y`, which biases it by :math:`\gamma\,\bar\mu`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from deepinv.physics import GaussianNoise, PoissonGaussianNoise, PoissonNoise

from .base import NamedLoss, as_physics

__all__ = [
    "SureLoss",
    "SureGaussian",
    "SurePoisson",
    "SurePoissonGaussian",
    "SURE_LOSSES",
    "sure_loss",
    "probe_divergence",
    "probe_second_divergence",
]

Level = float | torch.Tensor | None

# Probe law for second derivatives: two atoms with E b = 0, E b^2 = 1, E b^3 = 1.
_SKEW_P = 0.5 + 0.5 * math.sqrt(0.2)
_SKEW_LOW = -math.sqrt((1 - _SKEW_P) / _SKEW_P)  # taken with probability _SKEW_P
_SKEW_HIGH = math.sqrt(_SKEW_P / (1 - _SKEW_P))


def gaussian_probe(like: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal probe with the shape of ``like``."""
    return torch.empty_like(like).normal_(generator=rng)


def rademacher_probe(like: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
    """Uniform :math:`\\pm 1` probe with the shape of ``like``."""
    return torch.empty_like(like).bernoulli_(0.5, generator=rng).mul_(2).sub_(1)


def skewed_probe(like: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
    r"""Two-point probe with :math:`\mathbb{E}b=0`, :math:`\mathbb{E}b^2=\mathbb{E}b^3=1`."""
    low = torch.empty_like(like).bernoulli_(_SKEW_P, generator=rng).bool()
    return torch.where(low, _SKEW_LOW, _SKEW_HIGH).to(like)


def _sample_mean(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).mean(1)


def probe_divergence(
    h: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    h_y: torch.Tensor,
    b: torch.Tensor,
    tau: float,
    weight: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    r"""Per-sample :math:`\frac{1}{m\tau}(w \odot b)^\top(h(y+\tau b) - h(y))`.

    Its mean over probes with :math:`\mathbb{E} bb^\top = I` is
    :math:`\frac1m\sum_i w_i\,\partial_i h_i(y)` up to :math:`O(\tau)` (exactly if :math:`h`
    is affine).
    """
    return _sample_mean(weight * b * (h(y + tau * b) - h_y)) / tau


def probe_second_divergence(
    h: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    h_y: torch.Tensor,
    b: torch.Tensor,
    tau: float,
    weight: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    r"""Per-sample :math:`\frac{1}{m\tau^2} (w \odot b)^\top(h(y+\tau b) + h(y-\tau b) - 2h(y))`.

    For a probe with :math:`\mathbb{E}b=0`, :math:`\mathbb{E}b^2=\mathbb{E}b^3=1` (see
    :func:`skewed_probe`) its mean is :math:`\frac1m\sum_i \partial^2_{ii} h_i(y)` up to
    :math:`O(\tau^2)` (exactly if :math:`h` is quadratic).
    """
    return _sample_mean(weight * b * (h(y + tau * b) + h(y - tau * b) - 2 * h_y)) / tau**2


def _as_level(value: Any, like: torch.Tensor | None, what: str) -> torch.Tensor:
    """A noise level as a tensor broadcastable to ``like``: scalar or one per sample."""
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        raise TypeError(f"{what} must be a float or a tensor, got {type(value).__name__}")
    if like is None:  # construction time: the batch size is not known yet
        shown = value if not isinstance(value, torch.Tensor) else value.tolist()
        level = torch.as_tensor(
            value, dtype=None if isinstance(value, torch.Tensor) else torch.float64
        )
        if level.is_complex() or not bool(torch.isfinite(level).all()):
            raise ValueError(f"{what} must be finite (a real number >= 0), got {shown!r}")
        if torch.any(level < 0):
            raise ValueError(f"{what} must be non-negative, got {shown!r}")
        return level
    level = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if level.numel() not in (1, like.shape[0]):
        raise ValueError(
            f"{what} must be a scalar or have one value per sample ({like.shape[0]}), "
            f"got shape {tuple(level.shape)}"
        )
    if not bool(torch.isfinite(level).all()):
        raise ValueError(f"{what} must be finite, got {level.flatten()[:8].tolist()}")
    if torch.any(level < 0):
        raise ValueError(f"{what} must be non-negative, got {level.tolist()}")
    return level.reshape(-1, *([1] * (like.ndim - 1)))


class SureLoss(NamedLoss):
    r"""Base class of the SURE losses (see the module documentation for the formulas).

    Subclasses set :attr:`noise_class` and :attr:`levels` (the noise parameters they need)
    and implement :meth:`_estimate`. A level given at construction wins; otherwise it is
    read, at every call, from ``noise_model`` if given, else from ``physics.noise_model``,
    which must then be an instance of :attr:`noise_class`.

    :param noise_model: a deepinv noise model to read the levels from (default: the physics').
    :param torch.Generator rng: generator of the Monte-Carlo probes.
    :param str name: log name for :class:`deepinv.Trainer`.
    """

    noise_class: type = torch.nn.Module
    levels: tuple[str, ...] = ()

    def __init__(
        self,
        noise_model: torch.nn.Module | None = None,
        rng: torch.Generator | None = None,
        name: str | None = None,
        **levels: Level,
    ):
        super().__init__(name=name)
        if noise_model is not None and not isinstance(noise_model, self.noise_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.noise_class.__name__} noise model, "
                f"got {type(noise_model).__name__}"
            )
        if rng is not None and not isinstance(rng, torch.Generator):
            raise TypeError(f"rng must be a torch.Generator or None, got {type(rng).__name__}")
        self.noise_model = noise_model
        self.rng = rng
        self._levels = levels
        for key, value in levels.items():
            if value is not None:
                _as_level(value, None, key)  # validate early

    def _check_tau(self, **taus: float) -> None:
        for key, tau in taus.items():
            if isinstance(tau, bool) or not isinstance(tau, (int, float)):
                raise TypeError(
                    f"{type(self).__name__}: {key} must be a positive finite float, "
                    f"got {type(tau).__name__}"
                )
            if not math.isfinite(tau) or tau <= 0:
                raise ValueError(
                    f"{type(self).__name__}: {key} must be a positive finite float, got {tau!r}"
                )

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
        for key in self.levels:
            value = self._levels.get(key)
            if value is None:
                value = getattr(self._noise_source(physics), key)
            out[key] = _as_level(value, y, key)
        return out

    def _estimate(
        self,
        y: torch.Tensor,
        h_y: torch.Tensor,
        h: Callable[[torch.Tensor], torch.Tensor],
        **levels: torch.Tensor,
    ) -> torch.Tensor:
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
        h_y = physics.A(x_net)
        if h_y.shape != y.shape:
            raise ValueError(
                f"physics.A(x_net) has shape {tuple(h_y.shape)} but y has shape "
                f"{tuple(y.shape)}; expected equal shapes"
            )

        def h(v: torch.Tensor) -> torch.Tensor:
            return physics.A(model(v, physics))

        return self._estimate(y, h_y, h, **self.resolve_levels(physics, y))


class SureGaussian(SureLoss):
    r"""SURE for Gaussian noise :math:`y = Ax + \mathcal{N}(0, \sigma^2 I)`.

    .. math::

        \frac{1}{m}\|A f(y) - y\|^2 - \sigma^2
        + \frac{2\sigma^2}{m\tau} b^\top\big(A f(y+\tau b) - A f(y)\big),
        \quad b \sim \mathcal{N}(0, I).

    :param sigma: noise standard deviation (scalar or one per sample); ``None`` reads
        ``noise_model.sigma`` (a :class:`deepinv.physics.GaussianNoise`).
    :param float tau: finite-difference step, about 1% of the measurements' scale.

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
        name: str | None = None,
    ):
        super().__init__(noise_model=noise_model, rng=rng, name=name, sigma=sigma)
        self._check_tau(tau=tau)
        self.tau = float(tau)
        self._finalise_name()

    def _estimate(self, y, h_y, h, sigma):
        b = gaussian_probe(y, self.rng)
        var = sigma**2
        fit = _sample_mean((h_y - y).pow(2) - var)
        return fit + 2 * probe_divergence(h, y, h_y, b, self.tau, weight=var)


class SurePoisson(SureLoss):
    r"""SURE (PURE) for Poisson noise :math:`y = \gamma z`, :math:`z \sim \mathcal{P}(Ax/\gamma)`.

    .. math::

        \frac{1}{m}\|A f(y) - y\|^2 - \frac{\gamma}{m} 1^\top y
        + \frac{2\gamma}{m\tau}(b \odot y)^\top\big(A f(y+\tau b) - A f(y)\big),
        \quad b \in \{\pm1\}^m.

    :param gain: the gain :math:`\gamma`; ``None`` reads ``noise_model.gain`` (a
        :class:`deepinv.physics.PoissonNoise` with ``normalize=True``).
    :param float tau: finite-difference step.
    """

    noise_class = PoissonNoise
    levels = ("gain",)

    def __init__(
        self,
        gain: Level = None,
        tau: float = 1e-2,
        noise_model: PoissonNoise | None = None,
        rng: torch.Generator | None = None,
        name: str | None = None,
    ):
        super().__init__(noise_model=noise_model, rng=rng, name=name, gain=gain)
        self._check_tau(tau=tau)
        self.tau = float(tau)
        self._finalise_name()

    def _estimate(self, y, h_y, h, gain):
        b = rademacher_probe(y, self.rng)
        fit = _sample_mean((h_y - y).pow(2) - gain * y)
        return fit + 2 * probe_divergence(h, y, h_y, b, self.tau, weight=gain * y)


class SurePoissonGaussian(SureLoss):
    r"""SURE (PG-URE) for mixed noise :math:`y = \gamma z + \epsilon`.

    Here :math:`z \sim \mathcal{P}(Ax/\gamma)` and :math:`\epsilon \sim \mathcal{N}(0, \sigma^2 I)`;
    see the module documentation for the formula. The second-derivative term costs two
    extra reconstructions; it vanishes for reconstructors that are piecewise linear in
    :math:`y` (ReLU networks) and can be switched off with ``second_derivative=False``.

    :param gain: :math:`\gamma`; ``None`` reads ``noise_model.gain``.
    :param sigma: :math:`\sigma`; ``None`` reads ``noise_model.sigma`` (a
        :class:`deepinv.physics.PoissonGaussianNoise`).
    :param float tau1: step of the first-order divergence.
    :param float tau2: step of the second-order divergence.
    :param bool second_derivative: include the second-order term.
    """

    noise_class = PoissonGaussianNoise
    levels = ("gain", "sigma")

    def __init__(
        self,
        gain: Level = None,
        sigma: Level = None,
        tau1: float = 1e-2,
        tau2: float = 1e-2,
        second_derivative: bool = True,
        noise_model: PoissonGaussianNoise | None = None,
        rng: torch.Generator | None = None,
        name: str | None = None,
    ):
        super().__init__(noise_model=noise_model, rng=rng, name=name, gain=gain, sigma=sigma)
        self._check_tau(tau1=tau1, tau2=tau2)
        self.tau1 = float(tau1)
        self.tau2 = float(tau2)
        self.second_derivative = bool(second_derivative)
        self._finalise_name()

    def _estimate(self, y, h_y, h, gain, sigma):
        var = sigma**2
        fit = _sample_mean((h_y - y).pow(2) - gain * y - var)
        b1 = gaussian_probe(y, self.rng)
        est = fit + 2 * probe_divergence(h, y, h_y, b1, self.tau1, weight=gain * y + var)
        if self.second_derivative:
            b2 = skewed_probe(y, self.rng)
            est = est - 2 * probe_second_divergence(h, y, h_y, b2, self.tau2, gain * var)
        return est


#: SURE losses by noise name; tests and :func:`sure_loss` go through this registry.
SURE_LOSSES: dict[str, type[SureLoss]] = {
    "gaussian": SureGaussian,
    "poisson": SurePoisson,
    "poisson_gaussian": SurePoissonGaussian,
}


def sure_loss(noise: str | torch.nn.Module, **kwargs: Any) -> SureLoss:
    r"""The SURE loss for a noise given by name or as a deepinv noise model.

    :param noise: ``"gaussian"``, ``"poisson"``, ``"poisson_gaussian"`` (levels then read
        from the physics), or a :class:`~deepinv.physics.GaussianNoise`,
        :class:`~deepinv.physics.PoissonNoise` or :class:`~deepinv.physics.PoissonGaussianNoise`
        instance (levels read from it at every call).
    :param kwargs: passed to the loss (``tau``, ``rng``, explicit levels, ...).

    >>> import deepinv as dinv
    >>> from deepinv_ei.loss import sure_loss
    >>> type(sure_loss(dinv.physics.PoissonNoise(0.1))).__name__
    'SurePoisson'
    """
    if isinstance(noise, str):
        if noise not in SURE_LOSSES:
            raise ValueError(f"noise must be one of {sorted(SURE_LOSSES)}, got {noise!r}")
        return SURE_LOSSES[noise](**kwargs)
    for loss_class in SURE_LOSSES.values():
        if isinstance(noise, loss_class.noise_class):
            return loss_class(noise_model=noise, **kwargs)
    raise TypeError(
        "noise must be a name in "
        f"{sorted(SURE_LOSSES)} or one of "
        f"{[c.noise_class.__name__ for c in SURE_LOSSES.values()]}, got {type(noise).__name__}"
    )
