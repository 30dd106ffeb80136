r"""One entry point per task of the paper: :func:`load_dataset`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .base import ImageSplit
from .ct100 import load_ct100
from .embedded import digits, natural_images
from .phantoms import ct_phantoms
from .urban100 import load_urban100
from .usps import load_usps


@dataclass(frozen=True)
class TaskData:
    """The data of one task: the embedded default and the paper's real data set."""

    embedded: Callable[..., ImageSplit]
    real: Callable[..., ImageSplit]
    real_name: str


#: task -> data; tests and the benchmark iterate over it.
TASK_DATA: dict[str, TaskData] = {
    "ct": TaskData(ct_phantoms, load_ct100, "CT100"),
    "inpainting": TaskData(natural_images, load_urban100, "Urban100"),
    "cs": TaskData(digits, load_usps, "USPS"),
}


def load_dataset(task: str, data_dir=None, **kwargs) -> ImageSplit:
    r"""The images of ``task`` (``"ct"``, ``"inpainting"`` or ``"cs"``), train and test.

    ``data_dir=None`` gives the embedded default (:func:`ct_phantoms`, :func:`natural_images`,
    :func:`digits`); a path gives the paper's data set found there, format detected
    (:func:`load_ct100`, :func:`load_urban100`, :func:`load_usps`). Keyword arguments go to that
    loader (``size``, ``n_train``, ``n_test`` are understood by all); those set to ``None`` are
    dropped, so the loader's default applies, and ``seed`` is dropped for the real data sets,
    whose split is fixed.

    :param str task: ``"ct"``, ``"inpainting"`` or ``"cs"``.
    :param data_dir: ``None`` or a file or folder holding the real data set.
    :raises ValueError: for an unknown task; the loaders' errors for bad data.

    :Examples:

    >>> split = load_dataset("ct", size=32, n_train=2, n_test=1, seed=3)
    >>> split.name, tuple(split.train.shape)
    ('ct_phantoms', (2, 1, 32, 32))
    """
    if task not in TASK_DATA:
        raise ValueError(f"task: expected one of {sorted(TASK_DATA)}, got {task!r}")
    data = TASK_DATA[task]
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if data_dir is None:
        return data.embedded(**kwargs)
    kwargs.pop("seed", None)
    return data.real(data_dir, **kwargs)
