r"""Filtered back-projection in torch, on the tensors' device, matching ODL's ``fbp_op``.

For a 2D ray transform with angle range of length :math:`\alpha` (``geometry.motion_params.length``),

.. math::

    \mathrm{FBP}\, y = \frac{|\Delta_R|}{|\Delta_D|}\, A^\top \mathcal{F}^{-1}\!\left[
        \frac{|\xi|}{2\alpha}\, W\!\left(\frac{|\xi|}{\xi_{\max}}\right) \mathcal{F} y \right],

where :math:`\mathcal{F}` is the discrete Fourier transform along the detector axis (after zero
padding to :math:`2n-1` samples), :math:`\xi` the angular frequency, :math:`W` the apodisation
window (Ram-Lak, Shepp-Logan, Cosine, Hamming, Hann) cut off above ``frequency_scaling``, and
:math:`|\Delta_R|, |\Delta_D|` the cell volumes of the sinogram and image grids. The factor in
front turns the plain transpose :math:`A^\top` into the continuous back-projection, so the result
is in the image's physical units. This is ODL's ``fbp_op`` (exact for parallel beam, approximate
for fan beam, where it needs small fan angles).
"""

from __future__ import annotations

import math

import torch

from .checks import check_input
from .module import OperatorModule

# The apodisation window W(nu) of each filter, at nu in [0, frequency_scaling].
_WINDOWS = {
    "ram-lak": lambda f, fs: 1.0,
    "shepp-logan": lambda f, fs: torch.sinc(f / (2 * fs)),
    "cosine": lambda f, fs: torch.cos(f * math.pi / (2 * fs)),
    "hamming": lambda f, fs: 0.54 + 0.46 * torch.cos(f * math.pi / fs),
    "hann": lambda f, fs: torch.cos(f * math.pi / (2 * fs)) ** 2,
}
FILTER_TYPES = tuple(_WINDOWS)


def fbp_window(norm_freq: torch.Tensor, filter_type: str, frequency_scaling: float) -> torch.Tensor:
    r"""The FBP filter :math:`|\nu| W(\nu)` at normalised frequencies :math:`\nu\in[0,1]`."""
    name = str(filter_type).lower()
    if name not in FILTER_TYPES:
        raise ValueError(f"unknown filter_type {filter_type!r}; expected one of {FILTER_TYPES}")
    if not 0 < frequency_scaling <= 1:
        raise ValueError(f"expected 0 < frequency_scaling <= 1, got {frequency_scaling}")
    f = norm_freq
    return f * _WINDOWS[name](f, frequency_scaling) * (f <= frequency_scaling)


FILTER_DESIGNS = ("kak-slaney", "odl")


def _kak_slaney_response(n_fft: int) -> torch.Tensor:
    r"""Frequency response of the spatial Ram-Lak kernel (Kak & Slaney, eq. 61), in cycles/sample.

    :math:`h[0]=1/4`, :math:`h[k]=-1/(\pi k)^2` for odd :math:`k`, 0 for even :math:`k`; designed
    in space, its DC gain is exactly what a band-limited ramp needs, which avoids the cupping
    offset of a ramp sampled in frequency.
    """
    k = torch.arange(n_fft, dtype=torch.float64)
    k = torch.minimum(k, n_fft - k)  # circular distances
    h = torch.zeros(n_fft, dtype=torch.float64)
    h[0] = 0.25
    odd = k % 2 == 1
    h[odd] = -1.0 / (math.pi * k[odd]) ** 2
    return torch.fft.rfft(h).real  # = |nu| in cycles/sample up to Nyquist


def _odl_kernel(op, filter_type: str, frequency_scaling: float, padding: bool) -> torch.Tensor:
    """Impulse responses of ODL's own FBP filter, as a kernel over offsets -(n-1)..(n-1)."""
    import numpy as np
    from odl.applications.tomo import fbp_filter_op

    filt = fbp_filter_op(
        op, padding=padding, filter_type=filter_type, frequency_scaling=frequency_scaling
    )
    n = op.range.shape[-1]
    impulses = np.zeros(op.range.shape, dtype=op.range.dtype)
    impulses[0, 0] = impulses[1 % op.range.shape[0], n - 1] = 1
    resp = np.asarray(filt(op.range.element(impulses)).asarray(), dtype=np.float64)
    right = resp[0]  # offsets 0..n-1
    left = resp[1 % op.range.shape[0]][::-1]  # offsets 0..-(n-1)
    return torch.from_numpy(np.concatenate([left[:0:-1], right]).copy())


class FilteredBackProjection(torch.nn.Module):
    """FBP for a 2D parallel- or fan-beam ray transform wrapped as an :class:`OperatorModule`.

    :param OperatorModule ray_module: the forward ray transform (not its transpose).
    :param str filter_type: ``"Ram-Lak"``, ``"Shepp-Logan"``, ``"Cosine"``, ``"Hamming"`` or ``"Hann"``.
    :param float frequency_scaling: relative cut-off in (0, 1].
    :param bool padding: zero-pad the detector axis (to ``2n - 1`` or more) to avoid wrap-around.
    :param str filter_design: ``"kak-slaney"`` (default: the ramp designed in space, no DC
        offset) or ``"odl"`` (ODL's own ``fbp_filter_op`` kernel, to reproduce ``odl.fbp_op``
        to rounding error).
    """

    def __init__(
        self,
        ray_module: OperatorModule,
        filter_type: str = "Ram-Lak",
        frequency_scaling: float = 1.0,
        padding: bool = True,
        filter_design: str = "kak-slaney",
    ):
        super().__init__()
        op = ray_module.op
        geometry = getattr(op, "geometry", None)
        if geometry is None or ray_module.is_transpose:
            raise TypeError(
                "expected the OperatorModule of an odl RayTransform (not of its transpose)"
            )
        if geometry.ndim != 2:
            raise ValueError(
                f"FBP in torch is implemented for 2D parallel and fan beam; got a {geometry.ndim}D "
                f"{type(geometry).__name__} (3D FDK is not available in this version)"
            )
        if not (geometry.motion_partition.is_uniform and geometry.det_partition.is_uniform):
            raise ValueError("FBP needs uniformly spaced angles and detector pixels")
        if filter_design not in FILTER_DESIGNS:
            raise ValueError(
                f"unknown filter_design {filter_design!r}; expected one of {FILTER_DESIGNS}"
            )
        fbp_window(torch.zeros(1), filter_type, frequency_scaling)  # validates both
        self.ray = ray_module
        self.filter_type = filter_type
        self.frequency_scaling = float(frequency_scaling)
        self.filter_design = filter_design
        n_det = op.range.shape[-1]
        if filter_design == "odl":
            kernel = _odl_kernel(op, filter_type, frequency_scaling, padding)
            self.n_fft = 2 ** math.ceil(math.log2(3 * n_det))  # linear, not circular, convolution
            padded = torch.zeros(self.n_fft, dtype=torch.float64)
            padded[:n_det] = kernel[n_det - 1 :]
            padded[self.n_fft - n_det + 1 :] = kernel[: n_det - 1]
            # ODL's fbp_op is op.adjoint * filter, and op.adjoint = (w_R / w_D) A^T.
            ramp = torch.fft.rfft(padded) * (
                float(op.range.weighting.const) / float(op.domain.weighting.const)
            )
        else:
            self.n_fft = 2 ** math.ceil(math.log2(2 * n_det)) if padding else n_det
            det_cell = float(geometry.det_partition.cell_sides[0])
            alen = float(geometry.motion_params.length)
            norm = torch.arange(self.n_fft // 2 + 1, dtype=torch.float64) / (self.n_fft // 2)
            window = fbp_window(norm, filter_type, frequency_scaling) / norm.clamp_min(1e-300)
            window[0] = 1.0
            # Cell-volume ratio: turns the plain transpose into the continuous back-projection.
            cell_ratio = float(op.range.cell_volume) / float(op.domain.cell_volume)
            # cycles/sample -> cycles/unit (1/det_cell); ODL's |xi| / (2 alen) = |nu| * pi / alen.
            ramp = (
                _kak_slaney_response(self.n_fft)
                * window
                * (math.pi / (alen * det_cell))
                * cell_ratio
            )
        self.register_buffer("ramp", ramp, persistent=False)

    def filter(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the ramp filter along the detector axis (last axis) of sinograms ``y``.

        The result includes the cell-volume ratio, so ``ray.T(filter(y))`` is the FBP.
        """
        n_det = y.shape[-1]
        if y.numel() == 0:  # MKL's FFT refuses empty batches
            return y.clone()
        spec = torch.fft.rfft(y, n=self.n_fft, dim=-1)
        ramp = self.ramp.to(device=y.device)
        spec = spec * (ramp.to(spec.dtype) if ramp.is_complex() else ramp.to(y.dtype))
        return torch.fft.irfft(spec, n=self.n_fft, dim=-1)[..., :n_det]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y = check_input(y, self.ray.out_shape, "sinogram")
        with torch.autocast(y.device.type, enabled=False):  # the FFTs in float32 or float64
            return self.ray.T(self.filter(y).contiguous())
