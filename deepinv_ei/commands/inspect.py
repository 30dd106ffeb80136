"""``deepinv-ei inspect FILE``: print a measurement set's metadata and save a PNG of one
sinogram beside its filtered back-projection."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "inspect",
        help="print a measurement set's metadata and save a PNG of a sinogram and its FBP",
    )
    p.add_argument("file", help="the measurement set (.h5)")
    p.add_argument("--png", help="the PNG to write (default: FILE with the suffix .png)")
    p.add_argument("--split", default="train", choices=("train", "test"))
    p.add_argument("--index", type=int, default=0, help="which slice of the split to show")
    p.add_argument("--no-png", action="store_true", help="print the metadata only")
    return p


def save_sinogram_png(ms, path: Path, split: str = "train", index: int = 0) -> Path:
    """Save one sinogram of ``ms`` (a :class:`~deepinv_ei.scan.MeasurementSet`) beside its FBP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    ys = ms.y(split, as_tensor=False)
    if not 0 <= index < len(ys):
        raise ValueError(f"{ms.path}: the {split} split has {len(ys)} slices; got index {index}")
    y = torch.from_numpy(ys[index : index + 1])
    with torch.no_grad():
        x = ms.physics().A_dagger(y)
    slices = ms.train_slices if split == "train" else ms.val_slices
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    axes[0].imshow(y[0, 0].numpy(), cmap="gray", aspect="auto")
    axes[0].set(title=f"sinogram, slice {int(slices[index])}", xlabel="detector", ylabel="view")
    im = axes[1].imshow(x[0, 0].numpy(), cmap="gray")
    axes[1].set(title="FBP")
    axes[1].set_axis_off()
    fig.colorbar(im, ax=axes[1], label=ms.units.get("image", ""))
    fig.tight_layout()
    import io

    from deepinv_ei.utils.io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def run(args: argparse.Namespace) -> int:
    from deepinv_ei.cli import guarded
    from deepinv_ei.scan import MeasurementSet

    def runner() -> int:
        with MeasurementSet(args.file) as ms:
            print(ms.describe())
            if not args.no_png:
                png = Path(args.png) if args.png else Path(args.file).with_suffix(".png")
                save_sinogram_png(ms, png, args.split, args.index)
                print(f"saved {png}")
        return 0

    # not a measurement set, a missing file
    return guarded("inspect", runner, (ValueError, OSError))
