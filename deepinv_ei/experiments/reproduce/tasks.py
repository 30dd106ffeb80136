r"""Physics, group action and data of each task, built from a :class:`TaskProfile`.

- CT: parallel-beam ray transform from this project's ODL bridge
  (:func:`deepinv_ei.odl.ray_transform_physics`), FBP as :math:`A^\dagger`; random rotations.
- Inpainting: one fixed binary mask shared by all images and channels; circular shifts.
- CS: Gaussian :math:`m\times n` matrix scaled by :math:`1/\sqrt{m}`, :math:`A^\dagger` its
  pseudo-inverse; circular shifts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import deepinv as dinv
import torch

from .profiles import TaskProfile


@dataclass
class TaskSetup:
    profile: TaskProfile
    physics: dinv.physics.LinearPhysics
    x_train: torch.Tensor
    x_test: torch.Tensor
    dataset_name: str
    pinv_name: str  # how A^dagger is called in tables (FBP, A^dagger y, pinv)
    extra_name: str | None = None  # an extra test set (CT: pydicom's real slices)
    x_extra: torch.Tensor | None = None


def ct_physics(size: int, n_views: int, device: str | torch.device = "cpu"):
    r"""Parallel-beam CT on a :math:`s\times s` grid of unit pixels: ``n_views`` angles uniform on
    :math:`[0, \pi)`, :math:`\lceil\sqrt 2\, s\rceil` unit detectors (the paper's zero-padded Radon)."""
    import odl

    from deepinv_ei.odl import ray_transform_physics

    half = size / 2
    space = odl.uniform_discr([-half, -half], [half, half], (size, size), dtype="float32")
    n_det = math.ceil(math.sqrt(2) * size)
    angles = odl.uniform_partition(0.0, math.pi, n_views)
    detector = odl.uniform_partition(-n_det / 2, n_det / 2, n_det)
    geometry = odl.applications.tomo.Parallel2dGeometry(angles, detector)
    return ray_transform_physics((space, geometry), device=device)


def inpainting_physics(channels: int, size: int, missing_rate: float, seed: int, device="cpu"):
    """One fixed mask (``missing_rate`` of the pixels removed), the same for every channel."""
    gen = torch.Generator().manual_seed(seed)
    keep = (torch.rand(1, size, size, generator=gen) >= missing_rate).float()
    return dinv.physics.Inpainting(
        img_size=(channels, size, size), mask=keep.expand(channels, -1, -1).clone(), device=device
    )


def cs_physics(size: int, m: int, seed: int, device="cpu"):
    """Gaussian ``m x size^2`` matrix / sqrt(m) (deepinv's CompressedSensing), pinv as A^dagger."""
    gen = torch.Generator(device=device).manual_seed(seed)
    return dinv.physics.CompressedSensing(m=m, img_size=(1, size, size), rng=gen, device=device)


def make_transform(
    kind: str, n_trans: int, rng: torch.Generator | None = None, interpolation: str = "fourier"
):
    """The group of the task from :mod:`deepinv_ei.transforms`, identity excluded as in the
    paper (rotations by 1..359 integer degrees, shifts by nonzero offsets); ``interpolation``
    is the rotations' (``"fourier"``, ``"bilinear"``, ``"bicubic"``, ``"nearest"``)."""
    from deepinv_ei import transforms

    if kind == "shift":
        return transforms.Shift(nonzero=True, n_trans=n_trans, rng=rng)
    if kind == "rotate":
        return transforms.Rotate(
            multiples=1.0, nonzero=True, n_trans=n_trans, rng=rng, interpolation_mode=interpolation
        )
    raise ValueError(f"transform must be 'shift' or 'rotate', got {kind!r}")


def load_data(p: TaskProfile, data_dir: str | None, seed: int):
    """(train, test, dataset name) from :func:`deepinv_ei.data.load_dataset`, cut to the profile."""
    from deepinv_ei.data import load_dataset

    counts = {k: v for k, v in (("n_train", p.n_train), ("n_test", p.n_test)) if v is not None}
    if p.task == "ct" and data_dir is None and p.phantoms != "ellipses":
        from deepinv_ei.data.phantoms import ct_phantom_family

        counts = {"n_train": p.n_train or 90, "n_test": p.n_test or 10}
        split = ct_phantom_family(p.phantoms, size=p.image_size, seed=seed, **counts)
    else:
        split = load_dataset(p.task, data_dir=data_dir, size=p.image_size, seed=seed, **counts)
    train, test = split.train, split.test
    if p.n_train is not None:
        train = train[: p.n_train]
    if p.n_test is not None:
        test = test[: p.n_test]
    return train.float(), test.float(), split.name


def build_task(
    p: TaskProfile, data_dir: str | None = None, seed: int = 0, device: str | torch.device = "cpu"
) -> TaskSetup:
    """Data, then physics of ``p.task`` (a :class:`TaskProfile` is valid by construction); data
    errors surface here, before any training."""
    x_train, x_test, name = load_data(p, data_dir, seed)
    expected = (p.channels, p.image_size, p.image_size)
    for split, x in (("train", x_train), ("test", x_test)):
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"{p.task} {split} images must have shape (N, {expected[0]}, {expected[1]}, "
                f"{expected[2]}), got {tuple(x.shape)}"
            )
        if len(x) < 1:
            raise ValueError(f"{p.task}: the {split} set is empty")
    if p.task == "ct":
        physics, pinv_name = ct_physics(p.image_size, p.n_views, device), "FBP"
    elif p.task == "inpainting":
        physics = inpainting_physics(p.channels, p.image_size, p.missing_rate, seed, device)
        pinv_name = "A†y"
    elif p.task == "cs":
        physics, pinv_name = cs_physics(p.image_size, p.n_measurements, seed, device), "A†y"
    else:
        raise ValueError(f"unknown task {p.task!r}")
    setup = TaskSetup(p, physics, x_train, x_test, name, pinv_name)
    if p.task == "ct" and data_dir is None:
        # models trained on phantoms, also tested on real CT slices (shipped with pydicom)
        from deepinv_ei.data import pydicom_ct_slices

        setup.extra_name, setup.x_extra = "pydicom CT slices", pydicom_ct_slices(p.image_size)
    return setup
