r"""The common return type of every loader, and the image operations they share.

Every loader of :mod:`deepinv_ei.data` returns an :class:`ImageSplit`: float32 tensors of
shape :math:`(N, C, H, W)` with values in :math:`[0, 1]`, a training and a test part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class ImageSplit:
    r"""A training set and a test set of images, float32 :math:`(N, C, H, W)` in :math:`[0, 1]`.

    :param torch.Tensor train: training images.
    :param torch.Tensor test: test images (same :math:`C, H, W` as ``train``).
    :param str name: short name of the data set (``"ct_phantoms"``, ``"urban100"``, ...).
    :param str source: where the images came from (a path, or how they were generated).

    :Examples:

    >>> import torch
    >>> split = ImageSplit(torch.rand(4, 1, 8, 8), torch.rand(2, 1, 8, 8), "noise", "torch.rand")
    >>> split.image_shape, len(split.train), len(split.test)
    ((1, 8, 8), 4, 2)
    """

    train: Tensor
    test: Tensor
    name: str
    source: str

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            check_images(getattr(self, part), f"ImageSplit.{part}")
        if self.train.shape[1:] != self.test.shape[1:]:
            raise ValueError(
                "ImageSplit: train and test images must have the same (C, H, W); got "
                f"{tuple(self.train.shape[1:])} and {tuple(self.test.shape[1:])}"
            )

    @property
    def channels(self) -> int:
        """Number of channels :math:`C`."""
        return int(self.train.shape[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The shape :math:`(C, H, W)` of one image."""
        return tuple(int(s) for s in self.train.shape[1:])  # type: ignore[return-value]

    def head(self, n_train: int | None = None, n_test: int | None = None) -> ImageSplit:
        """The first ``n_train`` training and first ``n_test`` test images (``None``: all).

        :raises ValueError: if more images are asked for than the split holds.
        """
        train = _first(self.train, n_train, f"{self.name} training images")
        test = _first(self.test, n_test, f"{self.name} test images")
        return ImageSplit(train, test, self.name, self.source)

    def datasets(self, physics=None, batch_size: int = 64):
        r"""Datasets that :class:`deepinv.Trainer` iterates, for the training and the test part.

        Without ``physics`` each item is ``{"x": x}`` (use the trainer's
        ``online_measurements=True``); with ``physics`` the measurements
        :math:`y = A(x)` are computed once, here, and each item is ``{"x": x, "y": y}``
        (``online_measurements=False``).

        :param deepinv.physics.Physics physics: optional forward operator.
        :param int batch_size: images per call of ``physics`` when measuring.
        :return: ``(train_dataset, test_dataset)``, :class:`deepinv.datasets.TensorDataset`.
        """
        from deepinv.datasets import TensorDataset

        def make(x: Tensor) -> TensorDataset:
            if physics is None:
                return TensorDataset(x=x, use_dict_output=True)
            with torch.no_grad():
                y = torch.cat([physics(chunk) for chunk in x.split(batch_size)])
            return TensorDataset(x=x, y=y, use_dict_output=True)

        return make(self.train), make(self.test)


def _first(x: Tensor, n: int | None, what: str) -> Tensor:
    if n is None:
        return x
    check_count(n, what)
    if n > len(x):
        raise ValueError(f"asked for {n} {what}, but only {len(x)} are available")
    return x[:n]


def check_count(n, what: str, minimum: int = 0) -> int:
    """Check that ``n`` is an integer ``>= minimum`` (a clear error otherwise)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{what}: expected an int, got {type(n).__name__} ({n!r})")
    if n < minimum:
        raise ValueError(f"{what}: expected an int >= {minimum}, got {n}")
    return int(n)


def check_images(x, what: str) -> Tensor:
    """Check that ``x`` is a float32 tensor :math:`(N, C, H, W)` with values in :math:`[0, 1]`."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.dtype != torch.float32:
        raise ValueError(
            f"{what}: expected a float32 tensor of shape (N, C, H, W), got {x.dtype} "
            f"of shape {tuple(x.shape)}"
        )
    if x.numel() and not (torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise ValueError(f"{what}: expected values in [0, 1], got [{x.min()}, {x.max()}]")
    return x


def check_finite(x: np.ndarray, where: str) -> np.ndarray:
    """``x`` if every value is finite, else a :class:`ValueError` naming ``where`` (a file) and
    counting the NaN and infinite pixels (the loaders do not guess values for them)."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.inexact):
        bad = ~np.isfinite(x)
        if bad.any():
            n_nan = int(np.isnan(x).sum())
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{where}: {int(bad.sum())} of {x.size} pixel values are not finite ({n_nan} NaN, "
                f"{int(bad.sum()) - n_nan} infinite; the first at index {first}); repair or "
                "remove this image: the loaders do not guess values for missing pixels"
            )
    return x


def rescale_to_unit(x: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    r"""Map ``x`` to :math:`[0, 1]`: :math:`(x - lo) / (hi - lo)`, clipped.

    With ``window=None``, ``lo, hi`` are the minimum and maximum of ``x`` (a constant image
    maps to zeros).

    :raises ValueError: if ``x`` holds NaN or infinite values (its minimum and maximum would be
        meaningless).
    """
    x = check_finite(np.asarray(x, dtype=np.float64), "rescale_to_unit")
    lo, hi = (float(x.min()), float(x.max())) if window is None else map(float, window)
    if not hi > lo:
        if window is not None:
            raise ValueError(f"window: expected (low, high) with low < high, got {window}")
        return np.zeros_like(x)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def center_crop(x: Tensor, crop: int) -> Tensor:
    """The centre ``crop x crop`` window of ``x`` :math:`(..., H, W)`, zero-padded where ``x``
    is smaller (as torchvision's ``CenterCrop``, which the paper's code uses)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = max(crop - h, 0), max(crop - w, 0)
    if pad_h or pad_w:
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        h, w = x.shape[-2:]
    top, left = (h - crop) // 2, (w - crop) // 2
    return x[..., top : top + crop, left : left + crop]


def resize(x: Tensor, size: int, mode: str = "bilinear") -> Tensor:
    """Resize ``x`` :math:`(N, C, H, W)` to ``size x size``, antialiased, clipped to [0, 1]."""
    check_count(size, "size", minimum=1)
    if tuple(x.shape[-2:]) == (size, size):
        return x
    # antialias: downsampling 512 -> 128 must average, not subsample (cf. PIL's resize).
    y = F.interpolate(x, size=(size, size), mode=mode, antialias=True, align_corners=False)
    return y.clamp_(0.0, 1.0)


def to_tensor(images: list[np.ndarray] | np.ndarray) -> Tensor:
    """Stack images (each :math:`(H, W)` or :math:`(H, W, C)`) as float32 :math:`(N, C, H, W)`."""
    arrays = [np.asarray(a, dtype=np.float32) for a in images]
    arrays = [a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0) for a in arrays]
    return torch.from_numpy(np.ascontiguousarray(np.stack(arrays)))


def existing_path(path) -> Path:
    """``path`` as a :class:`~pathlib.Path`, or a :class:`FileNotFoundError` naming it."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"data path: expected a str or pathlib.Path, got {type(path).__name__}")
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"data path does not exist: {path}")
    return path


def describe_folder(folder: Path, limit: int = 8) -> str:
    """A short listing of what ``folder`` holds, for error messages."""
    if folder.is_file():
        return f"the file {folder.name}"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    if not names:
        return "an empty folder"
    more = f", ... ({len(names)} entries)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def split_images(images: Tensor, n_train: int, n_test: int, what: str, path) -> tuple:
    """The first ``n_train`` images for training, the next ``n_test`` for testing."""
    n_train = check_count(n_train, "n_train", minimum=1)
    n_test = check_count(n_test, "n_test", minimum=1)
    if len(images) < n_train + n_test:
        raise ValueError(
            f"{what} at {path}: expected at least n_train + n_test = {n_train + n_test} images, "
            f"found {len(images)}"
        )
    return images[:n_train], images[n_train : n_train + n_test]
