"""results.md, the Fig.-1-style panel and the training curves, all written atomically."""

from __future__ import annotations

from pathlib import Path

import torch

from deepinv_ei.utils import atomic_save_figure, atomic_write_text

from .methods import LABELS
from .metrics import psnr

# PSNR (dB) read from the ICCV 2021 paper's Figure 1 (one test image each, the seed code's
# convention); the table's averages could not be retrieved (see the shared reference).
PAPER_FIG1 = {
    "ct": {"pinv": 28.83, "mc": 30.29, "ei": 35.64, "sup": 36.92},
    "inpainting": {"pinv": 3.88, "mc": 3.88, "ei": 24.13, "sup": 24.91},
}
FIGURE_METHODS = ("pinv", "mc", "ei", "sup", "rei", "sup_ei")


def _image(t: torch.Tensor):
    t = t[0].clamp(0, 1)
    return t[0].numpy() if t.shape[0] == 1 else t.permute(1, 2, 0).numpy()


def task_figures(out: Path, task: str, res: dict, pinv_name: str) -> None:
    """``fig1_<task>.png`` (ground truth and each method on test image 0, with PSNR) and
    ``curves_<task>.png`` (test PSNR vs training seconds, training loss vs epoch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gt_path = out / "recon" / f"{task}_gt.pt"
    panels = [("ground truth", torch.load(gt_path, weights_only=True))] if gt_path.exists() else []
    for m in FIGURE_METHODS:
        path = out / "recon" / f"{task}_{m}.pt"
        if m in res and path.exists():
            x_hat = torch.load(path, weights_only=True)
            label = pinv_name if m == "pinv" else LABELS[m]
            if panels:
                label += f"\n{psnr(panels[0][1], x_hat).item():.2f} dB"
            panels.append((label, x_hat))
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.8))
        for ax, (label, img) in zip(list(getattr(axes, "flat", [axes])), panels, strict=True):
            ax.imshow(_image(img), cmap="gray", vmin=0, vmax=1)
            ax.set_title(label, fontsize=9)
            ax.axis("off")
        atomic_save_figure(fig, out / f"fig1_{task}.png")

    split_figure(out, task, res, pinv_name)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for m, e in res.items():
        if e.get("curve"):
            t, v = [c[1] for c in e["curve"]], [c[2] for c in e["curve"]]
            ax1.plot(t, v, marker=".", label=LABELS[m])
        for name, hist in (e.get("loss_history") or {}).items():
            if hist:
                ax2.semilogy(range(1, len(hist) + 1), hist, label=f"{LABELS[m]}: {name}")
    if "pinv" in res:
        ax1.axhline(res["pinv"]["psnr"], color="gray", ls="--", label=pinv_name)
    ax1.set(xlabel="training seconds", ylabel="test PSNR (dB)", title=f"{task}: PSNR vs time")
    ax2.set(xlabel="epoch", ylabel="training loss", title=f"{task}: training losses")
    for ax in (ax1, ax2):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    atomic_save_figure(fig, out / f"curves_{task}.png")


def split_figure(out: Path, task: str, res: dict, pinv_name: str) -> None:
    r"""``split_<task>.png``: for each method, :math:`\|P_R(\hat x - x)\| / \|x\|` and
    :math:`\|P_N(\hat x - x)\| / \|x\|` (mean over the test images) as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(m, e["split"]) for m, e in res.items() if e.get("split")]
    if not rows:
        return
    labels = [pinv_name if m == "pinv" else LABELS.get(m, m) for m, _ in rows]
    pos = torch.arange(len(rows)).float()
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2.5, 3.4))
    ax.bar(pos - 0.2, [s["range_rel"] for _, s in rows], 0.4, label="range ‖P_R e‖/‖x‖")
    ax.bar(pos + 0.2, [s["null_rel"] for _, s in rows], 0.4, label="nullspace ‖P_N e‖/‖x‖")
    ax.set_xticks(pos.tolist(), labels)
    ax.set(ylabel="relative error", title=f"{task}: where the error lives (e = x̂ − x)")
    ax.legend(fontsize=7)
    atomic_save_figure(fig, out / f"split_{task}.png")


def _split_cells(e: dict) -> str:
    s = e.get("split")
    if not s:
        return " | | "

    def db(v: float) -> str:  # an exactly zero part (MC's range error in inpainting) is +inf dB
        return "> 100" if v > 100 else f"{v:.2f}"

    return (
        f" {db(s['range_psnr'])} ({s['range_rel']:.3f}) | {db(s['null_psnr'])} ({s['null_rel']:.3f})"
        f" | {100 * s['null_fraction']:.0f} % "
    )


def markdown(results: dict) -> str:
    """The results table, with the paper's Figure-1 values beside ours."""
    lines = [
        f"# ICCV 2021 reproduction — profile `{results.get('profile')}`, seed {results.get('seed')}",
        "",
        f"Device: {results.get('device')}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in results.get("versions", {}).items())
        + ".",
        "",
        "PSNR: *standard* = 10·log10(1/MSE) with data range 1, averaged over the test images;",
        "*seed conv.* = the EI code's 20·log10(√(H·W)·max|x| / ‖x − x̂‖₂) over the whole",
        "C×H×W tensor (for RGB ≈ standard − 4.77 dB, peak max|x| instead of 1). The paper's",
        "values are its Figure 1 (one test image each, seed convention, full protocol on CT100 /",
        "Urban100); the table's averages could not be retrieved. Short profiles on embedded",
        "data are not expected to match them: compare the ordering and gaps.",
        "",
        "Error split: e = x̂ − x = P_R e + P_N e with P_R = A⁺A (range of Aᵀ, what the",
        "measurements see) and P_N = I − P_R (the nullspace, invisible to them). *range* and",
        "*null* give 10·log10(n/‖P e‖²) in dB (a PSNR of that part alone, data range 1) and, in",
        "brackets, ‖P e‖/‖x‖; *null share* is ‖P_N e‖²/‖e‖². MC can only shrink the range part.",
        "",
    ]
    for task in ("ct", "inpainting", "cs"):
        res = results.get(task)
        if not res:
            continue
        lines += [
            f"## {task} — {results.get('dataset', {}).get(task, '')}",
            "",
            "| method | PSNR standard | PSNR seed conv. | SSIM | range dB (rel.) | null dB (rel.) "
            "| null share | train s | epochs | paper Fig. 1 |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for m, e in res.items():
            paper = PAPER_FIG1.get(task, {}).get(m)
            label = e.get("name", LABELS.get(m, m))
            extra = f" ({e['noise']} noise; A†y {e['pinv_noisy_psnr']:.2f})" if "noise" in e else ""
            lines.append(
                f"| {label}{extra} | {e['psnr']:.2f} ± {e['psnr_std']:.2f} | {e['psnr_seed']:.2f} "
                f"| {e['ssim']:.3f} |{_split_cells(e)}| {e['train_seconds']:.0f} | {e['epochs']} "
                f"| {'' if paper is None else f'{paper:.2f}'} |"
            )
        extra = {m: e["extra_test"] for m, e in res.items() if "extra_test" in e}
        if extra:
            first = next(iter(extra.values()))
            lines += [
                "",
                f"Extra test set, {first['name']} ({first['n_images']} images, models trained "
                "on the training set above): "
                + ", ".join(
                    f"{res[m].get('name', LABELS.get(m, m))} {e['psnr']:.2f} dB"
                    for m, e in extra.items()
                )
                + ".",
            ]
        lines += [
            "",
            f"![{task}](fig1_{task}.png)",
            "",
            f"![{task} curves](curves_{task}.png)",
            "",
            f"![{task} error split](split_{task}.png)",
            "",
        ]
    return "\n".join(lines)


def write_markdown(out: Path, results: dict) -> None:
    atomic_write_text(out / "results.md", markdown(results))
