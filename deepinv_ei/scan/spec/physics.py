"""The deepinv physics of a scanner spec (:func:`ray_transform_from_spec`)."""

from __future__ import annotations

from typing import Any

from .fields import PARALLEL, ScannerSpecError
from .odl_conversion import geometry_from_spec
from .scanner import ScannerSpec

__all__ = ["ray_transform_from_spec"]


def ray_transform_from_spec(
    spec: ScannerSpec, device: Any = "cpu", backend: str = "auto", **kwargs: Any
) -> Any:
    """The deepinv physics of one slice of ``spec``.

    2D and ``parallel3d``: :func:`deepinv_ei.odl.ray_transform_physics` of
    :func:`geometry_from_spec` (FBP as ``A_dagger``), ``kwargs`` going to it. ``cone3d``:
    an :class:`~deepinv_ei.odl.OdlPhysics` of ODL's ``astra_cuda`` ray transform, on a CUDA
    device only.

    :raises ScannerSpecError: for a parallel-beam spec with a detector shift, which ODL's
        ``astra_cpu`` (and so the matrix and astra backends) ignores: centre the projections
        first (shift them by ``-det_shift``) and use ``spec.with_detector(shift=0.0)``.
    :raises ValueError: for ``cone3d`` without a CUDA device and ASTRA's CUDA build.

    >>> import numpy as np, torch
    >>> from deepinv_ei.scan import ScannerSpec, ray_transform_from_spec
    >>> spec = ScannerSpec("parallel2d", "mm", np.linspace(0, np.pi, 30, endpoint=False),
    ...                    det_count=48, det_pitch=0.1)
    >>> physics = ray_transform_from_spec(spec)
    >>> physics(torch.ones(1, 1, 48, 48)).shape
    torch.Size([1, 1, 30, 48])
    """
    import torch

    from ...odl import OdlPhysics, ray_transform_physics

    device = torch.device(device)
    space, geometry = geometry_from_spec(spec)
    if spec.geometry == "cone3d":
        from odl.applications.tomo import ASTRA_CUDA_AVAILABLE, RayTransform

        if device.type != "cuda" or not ASTRA_CUDA_AVAILABLE:
            raise ValueError(
                f"a cone3d spec needs ODL's astra_cuda on a CUDA device; got device "
                f"{str(device)!r} (ASTRA with CUDA {'found' if ASTRA_CUDA_AVAILABLE else 'not found'}): "
                "run it on a machine with an NVIDIA GPU and device='cuda'"
            )
        ray = RayTransform(space, geometry, impl="astra_cuda")
        return OdlPhysics(ray, backend="odl", device=device, **kwargs)
    if spec.geometry in PARALLEL and spec.det_shift != 0.0:
        raise ScannerSpecError(
            f"a parallel-beam detector shift ({spec.det_shift!r} {spec.unit}) is ignored by ODL's "
            "astra_cpu, which the matrix, astra and odl backends use: centre the projections "
            "first (shift each one by -detector.shift along the detector, the centre-of-rotation "
            "step of pre-processing) and use spec.with_detector(shift=0.0)"
        )
    return ray_transform_physics((space, geometry), backend=backend, device=device, **kwargs)
