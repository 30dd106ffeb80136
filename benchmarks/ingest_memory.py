"""Peak resident memory of ``deepinv-ei ingest`` on a large raw scan (synthetic TIFFs).

Writes a raw parallel-beam scan of ``--views`` 16-bit ``--size`` x ``--size`` TIFF
projections (1,000 of 512 x 512 by default: 0.5 GB), 10 flats and 10 darks under ``--data``
(outside the repository), then ingests it in a child process and prints the child's peak
resident set size::

    python benchmarks/ingest_memory.py --data /tmp/deepinv-ei-memory
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_scan(folder: Path, views: int, size: int, seed: int = 0) -> None:
    import tifffile

    rng = np.random.default_rng(seed)
    u = np.linspace(-1, 1, size)
    disc = np.sqrt(np.clip(1 - u[None, :] ** 2 - 0 * u[:, None], 0, None))  # a cylinder
    for sub in ("projections", "flats", "darks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    flat = 20000 + rng.normal(0, 150, (size, size))
    for i in range(10):
        tifffile.imwrite(folder / "flats" / f"flat_{i:02d}.tif", (flat + 100).astype(np.uint16))
        tifffile.imwrite(
            folder / "darks" / f"dark_{i:02d}.tif", np.full((size, size), 100, np.uint16)
        )
    noise = rng.normal(0, 30, (8, size, size))  # recycled: generating fresh noise is the slow part
    for i in range(views):
        frame = flat * np.exp(-1.5 * np.roll(disc, i % 7, axis=1)) + 100 + noise[i % 8]
        tifffile.imwrite(folder / "projections" / f"proj_{i:04d}.tif", frame.astype(np.uint16))
    angles = np.arange(views) * 180.0 / views
    (folder / "angles_deg.txt").write_text("\n".join(f"{a:.10g}" for a in angles) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/deepinv-ei-memory"))
    ap.add_argument("--views", type=int, default=1000)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--keep-every", type=int, default=4)
    args = ap.parse_args(argv)
    scan = args.data / "scan"
    if not (scan / "angles_deg.txt").is_file():
        t = time.perf_counter()
        write_scan(scan, args.views, args.size)
        print(f"wrote {args.views} projections in {time.perf_counter() - t:.0f} s under {scan}")
    out = args.data / "scan.h5"
    cmd = [sys.executable, "-m", "deepinv_ei.cli", "ingest", "--projections", f"{scan}/projections/*.tif",
           "--flats", f"{scan}/flats/*.tif", "--darks", f"{scan}/darks/*.tif",
           "--angles", f"{scan}/angles_deg.txt", "--geometry", "parallel", "--pixel-size", "0.01",
           "--unit", "mm", "--keep-every", str(args.keep_every), "--out", str(out),
           "--overwrite", "--quiet"]  # fmt: skip
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    size_mb = sum(p.stat().st_size for p in (scan / "projections").iterdir()) / 1e6
    print(f"ingested {args.views} projections ({size_mb:.0f} MB) in {seconds:.0f} s; "
          f"peak resident memory {peak_mib:.0f} MiB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
