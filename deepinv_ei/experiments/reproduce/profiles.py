r"""Training profiles as data: one :class:`TaskProfile` per (task, profile).

``paper`` holds the settings of Chen, Tachella & Davies (ICCV 2021) as listed in the shared
reference (``ei-paper-facts.md``); ``quick`` shrinks images, network and epochs for a CPU while
keeping the structure that makes EI work (under-determined :math:`A`, a group that :math:`A` is
not equivariant to); ``long`` trains the same for more epochs; ``smoke`` runs in seconds for the
tests. Why each profile differs from the paper, and what it measures, is in
``docs/reproduce.md`` and ``docs/results.md``.

A :class:`TaskProfile` is checked when it is made (:func:`check_profile`), built in or with
``--set`` overrides (:func:`apply_overrides`): code that receives one need not check it again.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field

#: The tasks of the paper: sparse-view CT, inpainting, compressed sensing.
TASKS = ("ct", "inpainting", "cs")
#: The profiles, from seconds (``smoke``) to the paper's protocol (``paper``, for a GPU).
PROFILES = ("smoke", "quick", "long", "paper")
#: Every method the reproduction can train or evaluate.
METHODS = ("pinv", "mc", "ei", "sup", "rei", "sup_ei")
#: The methods of a run without ``--methods``.
DEFAULT_METHODS = ("pinv", "mc", "ei", "sup")


@dataclass(frozen=True)
class TaskProfile:
    """Everything that defines one task's experiment (data, physics, group, network, optimiser).

    :raises ValueError: naming the setting, when one is out of range (:func:`check_profile`).
    """

    task: str
    profile: str
    # data
    image_size: int
    channels: int
    n_train: int | None = None  # None: all the loader returns
    n_test: int | None = None
    # physics
    n_views: int = 50  # CT: parallel-beam angles over [0, pi)
    missing_rate: float = 0.3  # inpainting: fraction of pixels removed by the fixed mask
    n_measurements: int = 64  # CS: rows of the Gaussian matrix
    phantoms: str = "ellipses"  # CT without --data-dir: "ellipses" or "textured" phantoms
    # group and EI weight
    transform: str = "shift"  # "shift" (circular) or "rotate" (integer degrees)
    n_trans: int = 2
    interpolation: str = "fourier"  # rotations: "fourier", "bilinear", "bicubic", "nearest"
    alpha: float = 1.0
    # network G (residual UNet)
    width: int = 64
    scales: int = 4
    batch_norm: bool = True
    zero_init: bool = True
    # optimisation (Adam, MultiStepLR x0.1)
    batch_size: int = 1
    lr: float = 1e-3
    weight_decay: float = 1e-8
    epochs: int = 100
    milestones: tuple[int, ...] = ()
    eval_interval: int = 1  # epochs between test-set evaluations (the curves' resolution)
    # speed options (GPU): autocast dtype ("none", "bf16", "fp16" with a GradScaler), and
    # torch.compile of the network G; neither changes the protocol
    mixed_precision: str = "none"
    compile: bool = False
    # Robust EI (method "rei"): noise on the measurements, SURE step
    rei_noise: str = "poisson"
    rei_noise_level: float = 0.05  # Poisson gain gamma, or Gaussian sigma
    rei_tau: float = 1e-2
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        check_profile(self)

    def changes_from(self, other: TaskProfile) -> dict[str, tuple]:
        """Fields that differ from ``other`` as ``{name: (other's value, this value)}``."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name in ("profile", "notes", "eval_interval", "mixed_precision", "compile"):
                continue
            a, b = getattr(other, f.name), getattr(self, f.name)
            if a != b:
                out[f.name] = (a, b)
        return out

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        d["notes"] = list(self.notes)
        return d


#: Allowed values of the settings, checked by :func:`check_profile` (int and float settings
#: not listed here must be >= 0; every float must be finite).
_CHOICES = {
    "transform": ("shift", "rotate"),
    "rei_noise": ("poisson", "gaussian"),
    "phantoms": ("ellipses", "textured"),
    "interpolation": ("fourier", "bilinear", "bicubic", "nearest"),
    "mixed_precision": ("none", "bf16", "fp16"),
}
_INT_MIN = {
    "image_size": 1,
    "channels": 1,
    "n_train": 1,
    "n_test": 1,
    "n_views": 1,
    "n_measurements": 1,
    "n_trans": 1,
    "width": 1,
    "scales": 1,
    "batch_size": 1,
    "epochs": 1,
    "eval_interval": 1,
}
# (low, high, low included, high included)
_FLOAT_RANGE = {
    "missing_rate": (0.0, 1.0, True, False),
    "lr": (0.0, math.inf, False, False),
    "rei_noise_level": (0.0, math.inf, False, False),
    "rei_tau": (0.0, math.inf, False, False),
}


def _range_text(low: float, high: float, low_in: bool, high_in: bool) -> str:
    parts = [f"{'>=' if low_in else '>'} {low:g}"]
    if math.isfinite(high):
        parts.append(f"{'<=' if high_in else '<'} {high:g}")
    return "a finite number " + " and ".join(parts)


def check_profile(p: TaskProfile) -> TaskProfile:
    """``p`` if every setting is in its range, else a :class:`ValueError` naming the setting.

    Run by :class:`TaskProfile` when it is made, hence before any data is loaded or any model
    trained: counts (``epochs``, ``batch_size``,
    ``eval_interval``, ...) are integers >= 1 (other integers >= 0), every float is finite
    (``alpha``, ``weight_decay`` >= 0; ``lr``, noise level and ``rei_tau`` > 0;
    ``missing_rate`` in [0, 1)), milestones are increasing positive epochs, and names are
    among their choices.
    """
    for f in dataclasses.fields(p):
        name, value = f.name, getattr(p, f.name)
        where = f"setting {name}={value!r} ({p.task}, profile {p.profile!r})"
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ValueError(f"{where}: expected one of {_CHOICES[name]}")
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        if isinstance(value, int):
            low = _INT_MIN.get(name, 0)
            if value < low:
                raise ValueError(f"{where}: expected an integer >= {low}")
        elif isinstance(value, float):
            low, high, low_in, high_in = _FLOAT_RANGE.get(name, (0.0, math.inf, True, False))
            ok = (
                math.isfinite(value)
                and (value >= low if low_in else value > low)
                and (value <= high if high_in else value < high)
            )
            if not ok:
                raise ValueError(f"{where}: expected {_range_text(low, high, low_in, high_in)}")
    m = p.milestones
    if any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in m) or any(
        b <= a for a, b in itertools.pairwise(m)
    ):
        raise ValueError(
            f"setting milestones={m!r} ({p.task}, profile {p.profile!r}): expected increasing "
            "epochs >= 1, e.g. milestones=200,300"
        )
    return p


_PAPER = {
    "ct": TaskProfile(
        task="ct",
        profile="paper",
        image_size=128,
        channels=1,
        n_train=90,
        n_test=10,
        n_views=50,
        transform="rotate",
        n_trans=5,
        alpha=100.0,
        batch_size=2,
        lr=5e-4,
        epochs=5000,
        milestones=(2000, 3000, 4000),
        eval_interval=50,
        rei_noise="gaussian",
        rei_noise_level=0.01,
        rei_tau=10.0,
        zero_init=False,
        notes=("CT100 at 128x128, 50 views over 180 degrees, 5 random rotations, alpha=100",),
    ),
    "inpainting": TaskProfile(
        task="inpainting",
        profile="paper",
        image_size=256,
        channels=3,
        n_train=90,
        n_test=10,
        missing_rate=0.3,
        transform="shift",
        n_trans=3,
        alpha=1.0,
        batch_size=1,
        lr=1e-3,
        epochs=2000,
        milestones=(500, 1000, 1500),
        eval_interval=20,
        rei_noise="poisson",
        rei_noise_level=0.05,
        rei_tau=1e-2,
        zero_init=False,
        notes=("Urban100 crop 512 -> 256 RGB, fixed mask with 30% missing, 3 shifts, alpha=1",),
    ),
    "cs": TaskProfile(
        task="cs",
        profile="paper",
        image_size=16,
        channels=1,
        n_measurements=64,
        transform="shift",
        n_trans=2,
        alpha=10.0,
        batch_size=8,
        lr=5e-4,
        epochs=300,
        milestones=(),
        eval_interval=10,
        rei_noise="gaussian",
        rei_noise_level=0.05,
        rei_tau=1e-2,
        zero_init=False,
        notes=("USPS 16x16, Gaussian 64x256 / sqrt(64), A^dagger = pinv, 2 shifts, alpha=10",),
    ),
}

_rep = dataclasses.replace

_QUICK = {
    # 64x64 with 14 views (m/n ~ 0.31, against the paper's ~0.55 at 128x128 with 50 views; why:
    # docs/reproduce.md, profile quick), 2 rotations, UNet width 16; zero-init so f = FBP at
    # step 0.
    "ct": _rep(
        _PAPER["ct"],
        profile="quick",
        image_size=64,
        n_views=14,
        n_trans=2,
        width=16,
        batch_size=4,
        lr=1e-3,
        epochs=35,
        milestones=(28,),
        eval_interval=1,
        zero_init=True,
        notes=(
            "sparser than the paper (m/n 0.31 instead of 0.55), for EI's nullspace gain to show "
            "in a CPU run (docs/reproduce.md); the paper's sampling: --set n_views=25",
        ),
    ),
    "inpainting": _rep(
        _PAPER["inpainting"],
        profile="quick",
        image_size=64,
        n_train=48,  # the 5 training photographs and seeded random crops of them
        n_test=8,  # the 2 test photographs and crops of them
        width=16,
        batch_size=4,
        lr=1e-3,
        epochs=100,
        milestones=(75,),
        eval_interval=2,
        zero_init=True,
        notes=("embedded photographs instead of Urban100",),
    ),
    "cs": _rep(
        _PAPER["cs"],
        profile="quick",
        n_train=None,
        n_test=None,
        width=32,
        scales=3,
        batch_norm=False,
        batch_size=16,
        lr=5e-4,
        epochs=15,
        milestones=(12,),
        eval_interval=1,
        zero_init=True,
        notes=("scikit-learn digits (1797, 8x8 resized) instead of USPS",),
    ),
}

_LONG = {
    "ct": _rep(
        _QUICK["ct"],
        profile="long",
        epochs=250,
        milestones=(200,),
        eval_interval=5,
        n_trans=3,
        notes=(*_QUICK["ct"].notes, "more epochs and rotations than quick, for a longer CPU run"),
    ),
    "inpainting": _rep(
        _QUICK["inpainting"], profile="long", epochs=400, milestones=(300,), eval_interval=10
    ),
    "cs": _rep(_QUICK["cs"], profile="long", epochs=60, milestones=(45,), eval_interval=2),
}

_SMOKE = {
    task: _rep(
        _QUICK[task],
        profile="smoke",
        image_size=(16 if task != "cs" else 16),
        n_views=12 if task == "ct" else _QUICK[task].n_views,
        n_train=4,
        n_test=2,
        width=4,
        scales=2 if task == "cs" else 3,
        batch_size=4,
        epochs=2,
        milestones=(1,),
        eval_interval=1,
        n_measurements=_QUICK[task].n_measurements if task != "cs" else 64,
    )
    for task in TASKS
}

_TABLE = {"paper": _PAPER, "quick": _QUICK, "long": _LONG, "smoke": _SMOKE}


def get_profile(task: str, profile: str) -> TaskProfile:
    """The :class:`TaskProfile` of ``task`` (ct, inpainting, cs) under ``profile``."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return _TABLE[profile][task]


_NOT_OVERRIDABLE = ("task", "profile", "notes")


def apply_overrides(p: TaskProfile, overrides: dict[str, str]) -> TaskProfile:
    """``p`` with fields replaced from ``{name: text}`` (``--set name=value``), parsed by type.

    Tuples take comma-separated values (``milestones=200,300``), booleans ``true``/``false``.
    The result, a new :class:`TaskProfile`, is checked as it is made.

    :raises ValueError: naming the setting, for an unknown name, a value that does not parse or
        one out of range (``epochs=-1``, ``alpha=inf``, ``eval_interval=0``).
    """
    if not overrides:
        return p
    fields = {f.name: f for f in dataclasses.fields(TaskProfile) if f.name not in _NOT_OVERRIDABLE}
    values = {}
    for name, text in overrides.items():
        if name not in fields:
            raise ValueError(f"--set: unknown setting {name!r}; expected one of {sorted(fields)}")
        current = getattr(p, name)
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                values[name] = text.lower() in ("true", "1")
            elif isinstance(current, tuple):
                values[name] = tuple(int(v) for v in text.split(",") if v.strip())
            elif current is None or isinstance(current, int):
                values[name] = None if text.lower() == "none" else int(text)
            elif isinstance(current, float):
                values[name] = float(text)
            else:
                values[name] = type(current)(text)
        except ValueError:
            raise ValueError(
                f"--set {name}={text!r}: expected a value like {current!r} ({type(current).__name__})"
            ) from None
    return dataclasses.replace(p, **values)


def paper_profile(task: str) -> TaskProfile:
    return get_profile(task, "paper")


def describe_changes(p: TaskProfile) -> str:
    """One line per setting that differs from the paper's protocol."""
    if p.profile == "paper":
        return f"[{p.task}] paper settings"
    changes = p.changes_from(paper_profile(p.task))
    lines = [f"[{p.task}] profile {p.profile!r} differs from the paper in:"]
    lines += [f"  {k}: paper {a!r} -> {b!r}" for k, (a, b) in changes.items()]
    lines += [f"  note: {n}" for n in p.notes if p.profile != "paper"]
    return "\n".join(lines)
