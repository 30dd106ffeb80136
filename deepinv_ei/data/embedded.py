r"""Embedded data sets: images that ship inside installed packages (no downloads).

- :func:`pydicom_ct_slices` -- the real CT slices among pydicom's test files;
- :func:`natural_images` -- RGB photographs from scikit-image and scikit-learn;
- :func:`digits` -- scikit-learn's 8x8 handwritten digits, resized (a USPS stand-in).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .base import ImageSplit, center_crop, check_count, rescale_to_unit, resize, to_tensor
from .readers import read_dicom_hu

#: CT slices in pydicom's test data that hold real patient anatomy (the others are MR,
#: RT or colour test images, or DICOMDIR records without pixel data). The two 512x512 ones
#: are JPEG 2000 and need a decoder (Pillow with OpenJPEG, or pylibjpeg); undecodable ones
#: are skipped with a warning.
PYDICOM_CT_FILES = ("CT_small.dcm", "J2K_pixelrep_mismatch.dcm", "693_J2KI.dcm")


def pydicom_ct_slices(
    size: int = 128, window: tuple[float, float] | None = (-1000.0, 1000.0)
) -> Tensor:
    r"""The real CT slices shipped with pydicom, :math:`(N, 1, \text{size}, \text{size})` in [0, 1].

    Values are Hounsfield units (RescaleSlope and RescaleIntercept applied), mapped to
    [0, 1] by ``window`` = (low, high) HU and clipped, then resized (antialiased bilinear).
    Files in :data:`PYDICOM_CT_FILES` order: a 128x128 thoracic slice (``CT_small.dcm``) and
    two 512x512 head slices. Meant as an extra *test* set for models trained on phantoms.

    :param int size: output side in pixels.
    :param tuple window: HU window mapped to [0, 1]; ``None``: each image's own min and max.
    :raises FileNotFoundError: if none of the slices can be found and decoded.
    """
    from pydicom.data import get_testdata_file

    size = check_count(size, "size", minimum=1)
    images, failures = [], []
    for name in PYDICOM_CT_FILES:
        path = get_testdata_file(name, download=False)
        if path is None:
            failures.append(f"{name}: not installed")
            continue
        try:
            hu = read_dicom_hu(path)
        except ValueError as err:
            failures.append(str(err))
            continue
        images.append(resize(to_tensor([rescale_to_unit(hu, window)]), size))
    if failures:
        warnings.warn("pydicom CT slices skipped: " + "; ".join(failures))
    if not images:
        raise FileNotFoundError(
            f"expected pydicom's CT test slices {PYDICOM_CT_FILES}, none could be loaded"
        )
    return torch.cat(images)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _motorcycle() -> np.ndarray:
    import skimage.data

    return skimage.data.stereo_motorcycle()[0]  # the left view of the stereo pair


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


#: Natural RGB photographs that load offline, name -> loader of a uint8 (H, W, 3) array.
#: (scikit-image's ``cat`` is ``chelsea``; ``hubble_deep_field``, ``retina``,
#: ``immunohistochemistry`` are not everyday photographs; several others need a download.)
NATURAL_IMAGES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "coffee": _skimage("coffee"),
    "chelsea": _skimage("chelsea"),
    "motorcycle": _motorcycle,
    "china": _sklearn("china.jpg"),
    "rocket": _skimage("rocket"),
    "flower": _sklearn("flower.jpg"),
}
#: The photographs of the training part of :func:`natural_images`, in order.
NATURAL_TRAIN = ("astronaut", "coffee", "chelsea", "motorcycle", "china")
#: The photographs of the test part of :func:`natural_images`.
NATURAL_TEST = ("rocket", "flower")


def _photo(name: str) -> Tensor:
    image = NATURAL_IMAGES[name]()
    return to_tensor([image[..., :3].astype(np.float64) / 255.0])


def _random_crop(photo: Tensor, rng: np.random.Generator, scale: tuple[float, float]) -> Tensor:
    h, w = photo.shape[-2:]
    side = int(round(rng.uniform(*scale) * min(h, w)))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return photo[..., top : top + side, left : left + side]


def _photo_set(
    names: tuple[str, ...], n: int | None, size: int, rng: np.random.Generator, scale
) -> Tensor:
    photos = [_photo(name) for name in names]
    # CenterCrop to the short side, then Resize, as the paper does for Urban100.
    images = [resize(center_crop(p, min(p.shape[-2:])), size) for p in photos]
    n = len(images) if n is None else n
    for k in range(len(images), n):  # more images than photos: seeded random crops
        images.append(resize(_random_crop(photos[k % len(photos)], rng, scale), size))
    return torch.cat(images[:n]) if n else torch.zeros(0, 3, size, size)


def natural_images(
    size: int = 256,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    crop_scale: tuple[float, float] = (0.5, 1.0),
) -> ImageSplit:
    r"""Natural RGB photographs, :math:`(N, 3, \text{size}, \text{size})` in [0, 1].

    Each photograph is centre-cropped to its short side and resized to ``size`` (antialiased
    bilinear), as the paper's CenterCrop-then-Resize for Urban100.
    Training: astronaut, coffee, chelsea (scikit-image), motorcycle (left view of
    scikit-image's stereo pair), china (scikit-learn). Test: rocket (scikit-image), flower
    (scikit-learn). Asking for more images than photographs adds random square crops (side a
    fraction ``crop_scale`` of the short side, seeded by ``seed``) of the same part's photographs,
    so no test content leaks into training.

    :param int size: output side in pixels.
    :param int n_train: training images (``None``: the 5 photographs).
    :param int n_test: test images (``None``: the 2 photographs).
    :param int seed: seed of the extra random crops.
    :param tuple crop_scale: range of the crops' side relative to the photograph's short side.
    """
    size = check_count(size, "size", minimum=1)
    if n_train is not None:
        check_count(n_train, "n_train")
    if n_test is not None:
        check_count(n_test, "n_test")
    seed = check_count(seed, "seed")
    lo, hi = crop_scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"crop_scale: expected 0 < low <= high <= 1, got {crop_scale}")
    train = _photo_set(NATURAL_TRAIN, n_train, size, np.random.default_rng([seed, 0]), crop_scale)
    test = _photo_set(NATURAL_TEST, n_test, size, np.random.default_rng([seed, 1]), crop_scale)
    source = "scikit-image and scikit-learn sample photographs"
    return ImageSplit(train, test, "natural_images", source)


def digits(
    size: int = 16, n_train: int | None = None, n_test: int = 297, seed: int = 0
) -> ImageSplit:
    r"""scikit-learn's handwritten digits (1797 images, 8x8, 17 grey levels), as
    :math:`(N, 1, \text{size}, \text{size})` in [0, 1].

    Values :math:`v / 16` are resized (bicubic, clipped to [0, 1]). A permutation seeded by
    ``seed`` puts its first ``n_test`` images in the test part and the next ``n_train``
    (``None``: all the rest) in the training part.

    :param int size: output side in pixels (16 as USPS).
    :param int n_train: training images (``None``: all not in the test part).
    :param int n_test: test images.
    :param int seed: seed of the split.
    """
    from sklearn.datasets import load_digits

    n_test = check_count(n_test, "n_test")
    seed = check_count(seed, "seed")
    images = load_digits().images / 16.0
    order = np.random.default_rng(seed).permutation(len(images))
    n_rest = len(images) - n_test
    n_train = n_rest if n_train is None else check_count(n_train, "n_train")
    if n_test + n_train > len(images):
        raise ValueError(
            f"digits: expected n_train + n_test <= {len(images)}, got {n_train} + {n_test}"
        )
    x = resize(to_tensor(images[order]), size, mode="bicubic")
    return ImageSplit(
        x[n_test : n_test + n_train].contiguous(),
        x[:n_test].contiguous(),
        "digits",
        f"scikit-learn load_digits, split seed={seed}",
    )
