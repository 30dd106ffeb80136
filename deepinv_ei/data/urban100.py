r"""Urban100 (the paper's inpainting data) from a folder of PNGs ``img_001 ... img_100``."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from .base import (
    ImageSplit,
    center_crop,
    check_count,
    describe_folder,
    existing_path,
    resize,
    to_tensor,
)
from .readers import read_rgb

_NUMBERED = re.compile(r"^img_?(\d+)", re.IGNORECASE)


def find_urban100_images(folder: Path) -> list[Path]:
    """One PNG per image number, in number order.

    Files named ``img_<number>...png`` anywhere under ``folder``; super-resolution benchmark
    copies (``img_001_SRF_4_LR.png``) are skipped, and where several files share a number
    (``image_SRF_2/`` and ``image_SRF_4/`` copies) the first by path is kept. A folder with no
    ``img_`` names falls back to all its PNGs sorted by name.
    """
    pngs = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".png")
    by_number: dict[int, Path] = {}
    for p in pngs:
        match = _NUMBERED.match(p.stem)
        if match and "_lr" not in p.stem.lower():
            by_number.setdefault(int(match.group(1)), p)
    if by_number:
        return [by_number[k] for k in sorted(by_number)]
    return sorted(pngs, key=lambda p: (p.name, str(p)))


def load_urban100(
    path, size: int = 256, crop: int = 512, n_train: int = 90, n_test: int = 10
) -> ImageSplit:
    r"""Urban100 from a folder, :math:`(N, 3, \text{size}, \text{size})` RGB in [0, 1].

    Each image is centre-cropped to ``crop x crop`` (zero-padded where smaller, as
    torchvision's CenterCrop) and resized to ``size`` (antialiased bilinear): the paper's
    CenterCrop(512) then Resize(256). The first ``n_train`` images (by number) train and the
    next ``n_test`` test: with 100 images and the defaults, img_001--090 and img_091--100.

    :param path: folder holding the PNGs (possibly in subfolders).
    :param int size: output side in pixels.
    :param int crop: side of the centre crop, before resizing.
    :param int n_train: training images.
    :param int n_test: test images.
    :raises FileNotFoundError: if ``path`` is missing or holds no PNG.
    :raises ValueError: if an image cannot be read or there are fewer than
        ``n_train + n_test`` images.
    """
    path = existing_path(path)
    size = check_count(size, "size", minimum=1)
    crop = check_count(crop, "crop", minimum=1)
    n_train = check_count(n_train, "n_train", minimum=1)
    n_test = check_count(n_test, "n_test", minimum=1)
    if not path.is_dir():
        raise ValueError(f"Urban100 at {path}: expected a folder of PNG images, got a file")
    files = find_urban100_images(path)
    if not files:
        raise FileNotFoundError(
            f"Urban100 at {path}: expected PNG images img_001.png ... img_100.png; "
            f"found {describe_folder(path)}"
        )
    needed = n_train + n_test
    if len(files) < needed:
        raise ValueError(
            f"Urban100 at {path}: expected at least n_train + n_test = {needed} PNG images, "
            f"found {len(files)}"
        )
    images = torch.cat(
        [resize(center_crop(to_tensor([read_rgb(p)]), crop), size) for p in files[:needed]]
    )
    return ImageSplit(
        images[:n_train].contiguous(), images[n_train:].contiguous(), "urban100", str(path)
    )
