"""Benchmark: ray transforms as torch operators, this project's backends against the anchors.

For each problem size (128^2 with 50 views, 256^2 with 180 views) and each method, measures
forward, transpose and forward+backward throughput (images/s, median of repeats) for batch
sizes 1, 8 and 32, and the peak resident memory that the method adds above the imported
libraries (operator construction included; each method runs in its own subprocess so that peaks
do not mix). Prints a table with ratios against ``odl.contrib.torch.OperatorModule`` measured in
the same run, and writes JSON with ``--json``.

Methods: ``ours-matrix`` and ``ours-astra`` (``deepinv_ei.odl.OperatorModule``),
``scipy-matrix`` (the same system matrix in SciPy CSR, batch as columns, as an autograd
function), ``odl-contrib`` (``odl.contrib.torch.OperatorModule``), ``astra-raw`` (ASTRA's CPU
projector per sample, no autograd: FP then BP), ``deepinv-tomography``
(``deepinv.physics.Tomography``).

``--layouts`` instead times the ways of storing and applying the matrix with torch's sparse
product (index width, input layout, ``addmm`` into a buffer, the CSC view ``A.t()`` for the
transpose, the batch as rows) next to SciPy.

Usage::

    python benchmarks/bench_operators.py  (or python -m deepinv_ei.experiments.bench_operators) [--sizes 128x50 256x180] [--batches 1 8 32]
        [--repeats 3] [--methods ...] [--json results/bench_operators.json] [--device cpu]
        [--threads N] [--layouts]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

METHODS = (
    "ours-matrix",
    "ours-astra",
    "scipy-matrix",
    "odl-contrib",
    "astra-raw",
    "deepinv-tomography",
)
ANCHOR = "odl-contrib"
#: The same matrix in SciPy: ours-matrix must never be slower.
SCIPY_ANCHOR = "scipy-matrix"
MODES = ("forward", "transpose", "fwd+bwd")
#: CPU targets: (size, views) -> minimum fwd+bwd ratio vs the anchor at batch 32.
SPEED_TARGETS = {(128, 50): 40.0, (256, 180): 25.0}
MEMORY_TARGET_MIB = {(256, 180): 1024.0}


def _rss_mib() -> float:
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_operators(method: str, size: int, views: int, device: str, threads: int | None = None):
    r"""The operators that ``method`` times, on ``size x size`` images and ``views`` angles.

    :return: ``(forward, transpose, fwd_bwd, sinogram_shape)``: callables on batches of images
        ``(B, 1, size, size)``, of sinograms, and of images again (the gradient of
        :math:`\|Ax\|^2`, :math:`2A^\top A x`; ``astra-raw`` has no autograd and returns
        :math:`A^\top A x`), and the ``(views, detector pixels)`` shape of a sinogram.
    """
    import numpy as np
    import odl
    import torch
    from odl.applications.tomo import RayTransform, parallel_beam_geometry

    space = odl.uniform_discr([-size / 2] * 2, [size / 2] * 2, (size, size), dtype="float32")
    geometry = parallel_beam_geometry(space, num_angles=views)
    ray = RayTransform(space, geometry, impl="astra_cpu" if device == "cpu" else "astra_cuda")

    def fwd_bwd_of(apply):
        def run(x):
            x = x.detach().requires_grad_(True)
            (apply(x) ** 2).sum().backward()
            return x.grad

        return run

    if method.startswith("ours-"):
        from deepinv_ei.odl import OperatorModule

        backend = method.split("-", 1)[1]
        options = {"num_threads": threads} if backend == "astra" else {}
        A = OperatorModule(ray, backend=backend, **options)
        A(torch.zeros(1, 1, size, size, device=device))  # builds the matrix / projectors
        return A, A.T, fwd_bwd_of(A), ray.range.shape
    if method == "scipy-matrix":
        from deepinv_ei.odl import system_matrix

        mat = system_matrix(ray, dtype=np.float32)
        mat_t = mat.T.tocsr()

        def product(m, out_shape):
            def run(x):
                flat = x.detach().cpu().numpy().reshape(x.shape[0], -1)
                out = np.ascontiguousarray((m @ flat.T).T)
                return torch.from_numpy(out).reshape(x.shape[0], 1, *out_shape)

            return run

        fwd = product(mat, ray.range.shape)
        bwd = product(mat_t, ray.domain.shape)

        class _Scipy(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return fwd(x)

            @staticmethod
            def backward(ctx, g):
                return bwd(g)

        return fwd, bwd, fwd_bwd_of(_Scipy.apply), ray.range.shape
    if method == "odl-contrib":
        from odl.contrib.torch import OperatorModule as OdlContribModule

        A, AT = OdlContribModule(ray), OdlContribModule(ray.adjoint)
        return A, AT, fwd_bwd_of(A), ray.range.shape
    if method == "astra-raw":
        import astra

        from deepinv_ei.odl.geometry import astra_cpu_projector

        pid = astra_cpu_projector(ray)

        def per_sample(direct, out_shape):
            def run(x):
                xs = x.detach().cpu().numpy().reshape(-1, *x.shape[-2:])
                out = np.empty((xs.shape[0], *out_shape), dtype=np.float32)
                for i in range(xs.shape[0]):
                    direct(pid, np.ascontiguousarray(xs[i]), out=out[i])
                return torch.from_numpy(out)

            return run

        fp = per_sample(astra.projector.direct_FP, ray.range.shape)
        bp = per_sample(astra.projector.direct_BP, ray.domain.shape)
        return fp, bp, lambda x: bp(fp(x)), ray.range.shape
    if method == "deepinv-tomography":
        import deepinv as dinv

        physics = dinv.physics.Tomography(angles=views, img_width=size, circle=False, device=device)
        sino_shape = physics.A(torch.zeros(1, 1, size, size, device=device)).shape[-2:]
        return physics.A, physics.A_adjoint, fwd_bwd_of(physics.A), tuple(sino_shape)
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def _time(fn, arg, repeats: int) -> float:
    import torch

    fn(arg)  # warm-up
    times = []
    for _ in range(repeats):
        if arg.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(arg)
        if arg.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_worker(
    method: str,
    size: int,
    views: int,
    batches: list[int],
    repeats: int,
    device: str,
    threads: int | None = None,
) -> dict:
    """Measure one method on one size (called in a fresh subprocess)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    import deepinv_ei.odl  # noqa: F401  (imports counted in the baseline, as for every method)

    base = _rss_mib()
    t0 = time.perf_counter()
    forward, transpose, fwd_bwd, sino_shape = build_operators(method, size, views, device, threads)
    setup_s = time.perf_counter() - t0
    results = {"method": method, "size": size, "views": views, "setup_s": setup_s, "batches": {}}
    gen = torch.Generator().manual_seed(0)
    for b in batches:
        x = torch.rand(b, 1, size, size, generator=gen).to(device)
        y = torch.rand(b, 1, *sino_shape, generator=gen).to(device)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        entry = {}
        for mode, fn, arg in (
            ("forward", forward, x),
            ("transpose", transpose, y),
            ("fwd+bwd", fwd_bwd, x),
        ):
            entry[mode] = b / _time(fn, arg, repeats)
        entry["peak_mib"] = _rss_mib() - base
        if device == "cuda":
            entry["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        results["batches"][str(b)] = entry
    return results


def cpu_info() -> dict:
    """The CPU model and its vector instruction sets (from ``/proc/cpuinfo``, Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                if flags and model:
                    break
    except OSError:
        pass
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16")
    simd = [f for f in wanted if f in flags]
    return {"model": model, "simd": simd, "cores": os.cpu_count()}


def run_layouts(size: int, views: int, batch: int, repeats: int) -> dict[str, dict[str, float]]:
    """Forward and transpose images/s of ways to store and apply one system matrix.

    Variants: torch CSR with int32 or int64 indices, the batch as the dense operand's columns
    given column-major (``A @ x.T``, no copy) or row-major (``A @ x.T.contiguous()``),
    ``torch.addmm`` into a preallocated buffer, the CSC view ``A.t()`` instead of a stored
    :math:`A^\top`, the batch as rows (dense @ sparse), the first half of the rows with twice
    the batch (what the 90-degree symmetry of an angle set would allow), and SciPy.
    """
    import warnings

    import numpy as np
    import odl
    import torch
    from odl.applications.tomo import RayTransform, parallel_beam_geometry

    from deepinv_ei.odl import system_matrix

    warnings.simplefilter("ignore", UserWarning)
    space = odl.uniform_discr([-size / 2] * 2, [size / 2] * 2, (size, size), dtype="float32")
    ray = RayTransform(space, parallel_beam_geometry(space, num_angles=views), impl="astra_cpu")
    mat = system_matrix(ray, dtype=np.float32)
    mat_t = mat.T.tocsr()

    def csr(m, idx):
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(idx)),
            torch.from_numpy(m.indices.astype(idx)),
            torch.from_numpy(m.data),
            size=m.shape,
        )

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, mat.shape[1], generator=gen)
    y = torch.rand(batch, mat.shape[0], generator=gen)
    variants = {}
    for name, idx in (("int32", np.int32), ("int64", np.int64)):
        a, at = csr(mat, idx), csr(mat_t, idx)
        variants[f"CSR {name}, A @ x.T"] = (
            lambda a=a: (a @ x.T).T.contiguous(),
            lambda at=at: (at @ y.T).T.contiguous(),
        )
        variants[f"CSR {name}, A @ x.T.contiguous()"] = (
            lambda a=a: (a @ x.T.contiguous()).T.contiguous(),
            lambda at=at: (at @ y.T.contiguous()).T.contiguous(),
        )
        variants[f"CSR {name}, torch.sparse.mm"] = (
            lambda a=a: torch.sparse.mm(a, x.T).T.contiguous(),
            lambda at=at: torch.sparse.mm(at, y.T).T.contiguous(),
        )
    a, at = csr(mat, np.int32), csr(mat_t, np.int32)
    out_f, out_t = torch.empty(mat.shape[0], batch), torch.empty(mat.shape[1], batch)
    variants["CSR int32, addmm(out=)"] = (
        lambda: torch.addmm(out_f, a, x.T, beta=0, out=out_f).T.contiguous(),
        lambda: torch.addmm(out_t, at, y.T, beta=0, out=out_t).T.contiguous(),
    )
    a_csc = a.t()  # CSC view of A^T
    variants["CSR int32 A, CSC view A.t() for A^T"] = (
        lambda: (a @ x.T).T.contiguous(),
        lambda: (a_csc @ y.T).T.contiguous(),
    )
    variants["batch as rows, x @ A^T (CSR)"] = (lambda: x @ at, lambda: y @ a)
    half = csr(mat[: mat.shape[0] // 2], np.int32)
    x2 = torch.cat([x, x])
    variants["half the rows, twice the batch"] = (lambda: (half @ x2.T).T.contiguous(), None)
    xs, ys = x.numpy(), y.numpy()
    variants["SciPy CSR"] = (
        lambda: np.ascontiguousarray((mat @ xs.T).T),
        lambda: np.ascontiguousarray((mat_t @ ys.T).T),
    )
    results = {}
    for name, (fwd, tr) in variants.items():
        entry = {}
        for mode, fn in (("forward", fwd), ("transpose", tr)):
            if fn is None:
                continue
            try:
                entry[mode] = batch / _time(lambda _, fn=fn: fn(), x, repeats)
            except RuntimeError as err:  # a layout torch does not support
                entry[mode] = float("nan")
                entry["error"] = str(err)[:100]
        results[name] = entry
    return results


def _versions() -> dict:
    import astra
    import deepinv
    import odl
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "deepinv": deepinv.__version__,
        "odl": odl.__version__,
        "astra": astra.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpu": cpu_info(),
    }


def format_table(results: list[dict], batches: list[int]) -> str:
    lines = []
    by_key = {(r["method"], r["size"], r["views"]): r for r in results if "error" not in r}
    for size, views in sorted({(r["size"], r["views"]) for r in results}):
        lines.append(
            f"\n## {size}x{size}, {views} views (images/s, median; ratio vs {ANCHOR}; peak MiB above imports)"
        )
        header = (
            f"{'method':<20}{'batch':>6}" + "".join(f"{m:>20}" for m in MODES) + f"{'peak MiB':>10}"
        )
        lines.append(header)
        anchor = by_key.get((ANCHOR, size, views))
        for r in results:
            if (r["size"], r["views"]) != (size, views):
                continue
            if "error" in r:
                lines.append(f"{r['method']:<20} failed: {r['error'][-200:]}")
                continue
            for b in batches:
                e = r["batches"][str(b)]
                cells = []
                for m in MODES:
                    ratio = ""
                    if anchor is not None:
                        ratio = f" ({e[m] / anchor['batches'][str(b)][m]:.1f}x)"
                    cells.append(f"{e[m]:>10.1f}{ratio:>10}")
                lines.append(
                    f"{r['method']:<20}{b:>6}" + "".join(cells) + f"{e['peak_mib']:>10.0f}"
                )
    return "\n".join(lines)


def check_targets(results: list[dict], method: str = "ours-matrix", batch: int = 32) -> list[dict]:
    """Compare ``method`` with the targets: speed ratios against ``odl.contrib.torch`` and peak
    memory at ``batch``, and never slower than SciPy's product on the same matrix (every batch
    and mode measured)."""
    by_key = {(r["method"], r["size"], r["views"]): r for r in results if "error" not in r}
    rows = []
    for (size, views), target in SPEED_TARGETS.items():
        ours, anchor = by_key.get((method, size, views)), by_key.get((ANCHOR, size, views))
        if ours is None or anchor is None or str(batch) not in ours["batches"]:
            continue
        ratio = ours["batches"][str(batch)]["fwd+bwd"] / anchor["batches"][str(batch)]["fwd+bwd"]
        rows.append(
            {
                "what": f"fwd+bwd {size}^2/{views} views, batch {batch}, vs {ANCHOR}",
                "value": ratio,
                "target": target,
                "met": ratio >= target,
            }
        )
    for size, views in sorted({(r["size"], r["views"]) for r in results}):
        ours, scipy = by_key.get((method, size, views)), by_key.get((SCIPY_ANCHOR, size, views))
        if ours is None or scipy is None:
            continue
        ratios = [
            ours["batches"][b][m] / scipy["batches"][b][m]
            for b in ours["batches"]
            if b in scipy["batches"]
            for m in MODES
        ]
        if ratios:
            rows.append(
                {
                    "what": f"slowest ratio vs {SCIPY_ANCHOR} {size}^2/{views} views, any batch/mode",
                    "value": min(ratios),
                    "target": 1.0,
                    "met": min(ratios) >= 1.0,
                }
            )
    for (size, views), limit in MEMORY_TARGET_MIB.items():
        ours = by_key.get((method, size, views))
        if ours is None or str(batch) not in ours["batches"]:
            continue
        peak = ours["batches"][str(batch)]["peak_mib"]
        rows.append(
            {
                "what": f"peak MiB {size}^2/{views} views, batch {batch}, fwd+bwd",
                "value": peak,
                "target": limit,
                "met": peak <= limit,
            }
        )
    return rows


def plot(results: list[dict], path: Path, batch: int = 32) -> None:
    """Bar chart of fwd+bwd images/s at ``batch`` per method and problem size (log scale)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepinv_ei.utils import atomic_write_bytes

    sizes = sorted({(r["size"], r["views"]) for r in results})
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4), squeeze=False)
    for ax, (size, views) in zip(axes[0], sizes, strict=True):
        rows = [r for r in results if (r["size"], r["views"]) == (size, views) and "error" not in r]
        names = [r["method"] for r in rows]
        values = [r["batches"][str(batch)]["fwd+bwd"] for r in rows if str(batch) in r["batches"]]
        ax.barh(
            names[: len(values)],
            values,
            color=["tab:green" if n.startswith("ours") else "tab:gray" for n in names],
        )
        ax.set_xscale("log")
        ax.set_xlabel(f"forward+backward images/s (batch {batch})")
        ax.set_title(f"{size}x{size}, {views} views")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["128x50", "256x180"], help="SIZExVIEWS")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads and this project's worker threads (default: torch's)",
    )
    parser.add_argument(
        "--layouts",
        action="store_true",
        help="time storage layouts of the matrix with torch's sparse product (batch: the largest)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG bar chart here")
    parser.add_argument(
        "--worker", nargs=2, metavar=("METHOD", "SIZExVIEWS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)

    if args.worker:
        method, sv = args.worker
        size, views = map(int, sv.split("x"))
        print(
            json.dumps(
                run_worker(
                    method, size, views, args.batches, args.repeats, args.device, args.threads
                )
            )
        )
        return 0

    if args.layouts:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        cpu = cpu_info()
        print(
            f"CPU: {cpu['model']}, {' '.join(cpu['simd'])}; torch threads {torch.get_num_threads()}"
        )
        for sv in args.sizes:
            size, views = map(int, sv.split("x"))
            batch = max(args.batches)
            print(f"\n## {size}x{size}, {views} views, batch {batch} (images/s, median)")
            print(f"{'variant':<40}{'forward':>12}{'transpose':>12}")
            for name, e in run_layouts(size, views, batch, args.repeats).items():
                fwd, tr = e.get("forward", float("nan")), e.get("transpose", float("nan"))
                print(f"{name:<40}{fwd:>12.0f}{tr:>12.0f}")
        return 0

    from tqdm import tqdm

    results = []
    jobs = [(sv, m) for sv in args.sizes for m in args.methods]
    for sv, method in tqdm(jobs, desc="bench_operators", unit="run"):
        size, views = map(int, sv.split("x"))
        cmd = [
            sys.executable,
            "-m",
            "deepinv_ei.experiments.bench_operators",
            "--worker",
            method,
            sv,
            "--repeats",
            str(args.repeats),
            "--device",
            args.device,
        ]
        cmd += ["--batches", *map(str, args.batches)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            results.append(
                {"method": method, "size": size, "views": views, "error": proc.stderr.strip()}
            )
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    table = format_table(results, args.batches)
    cpu = cpu_info()
    table += f"\n\nCPU: {cpu['model']}, {cpu['cores']} cores, {' '.join(cpu['simd'])}"
    print(table)
    targets = check_targets(results)
    if targets:
        print("\n## Targets")
        for t in targets:
            print(
                f"{t['what']}: {t['value']:.1f} (target {t['target']:g}) {'met' if t['met'] else 'NOT met'}"
            )
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")
    if args.json:
        from deepinv_ei.utils import atomic_write_json

        payload = {
            "device": args.device,
            "repeats": args.repeats,
            "threads": args.threads,
            "versions": _versions(),
            "results": results,
        }
        atomic_write_json(args.json, payload)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
