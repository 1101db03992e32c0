"""The report of a shift/scale study: results.csv, learning curves, learned values, report.md.

:func:`write_report` turns the study's rows (one dict per run, see below) and the runs' folders
into, under one directory:

* ``results.csv``: one row per run, columns :data:`COLUMNS` then ``error`` and ``run_dir``;
  empty cells for missing values (failed runs, targets never reached).
* ``curves/<arch>-<dropout|nodropout>-lr<lr>.png``: per (arch, dropout, learning rate), the
  EMA training error per step (left) and the validation error per epoch (right) of every
  variant, mean over seeds (each seed faint). ``-bs<N>`` is appended when the rows hold
  several batch sizes, and the data set's name is put first when they hold several data sets.
* ``learned.png``: the values the shift and scale layers learned, per position and seed.
* ``report.md``: the setup, tables, and one section per conclusion of the thesis, each with
  a verdict computed from the rows (nothing in it is written in advance);
* ``verdicts.json``: the same verdicts and the numbers behind them, for scripts.

matplotlib is optional (``pip install chainrule[plot]``): without it the PNGs are skipped with
a printed note, and results.csv and report.md are still written. Every file is written
atomically (a temporary file in the same folder, then :func:`os.replace`).

Rows. Each row has ``variant``, ``arch``, ``dropout``, ``lr``, ``seed``, ``epochs``,
``batch_size``, ``dataset``, ``num_classes``, ``status`` ("ok"/"failed"), ``error``,
``run_dir`` (absolute, or relative to the report's directory) and, for ok runs,
``final_train_error_ema``, ``final_val_error``, ``best_val_error``, ``best_epoch``,
``epochs_to_target`` (None when never reached), ``time_s`` and ``target_error``. An ok run's
folder holds ``curves.npz`` (``step``, ``train_error_ema``, ``epoch``, ``val_error``,
``steps_per_epoch``, ...) and ``learned.json`` (one dict per added shift/scale layer).

Verdict rules. A paired comparison matches two variants' ok runs with the same data set, arch,
dropout, learning rate, seed, batch size and epochs. A claim that holds in a fraction f of the
pairs is "supported" when f >= :data:`SUPPORTED_AT` (2/3), "not supported" when
f <= :data:`NOT_SUPPORTED_AT` (1/3), "mixed" in between, and "not tested in these runs" when
there is no pair. Conclusions (1)-(3) and the first half of (4) use the runs whose batch size
is not 1 (all runs when every run has batch size 1); batch size 1 is the online-learning test.

1. Layer-wise shift-and-scale is the best of the nine shift/scale variants: per setting
   (data set, arch, dropout, batch size), each variant's mean best validation error over
   learning rates and seeds is ranked (1 = lowest, ties share the mean rank); "supported"
   when ``shift-layer+scale-layer`` has the lowest mean rank over the settings, "mixed" when
   it does not but is lowest in some setting, else "not supported".
2. It trains faster than ``none``: in each pair, the EMA training error at the end of the first
   epoch and the mean EMA training error per step (area under the curve over the steps); each
   measure gets a verdict from the fraction of pairs where it is lower, and the conclusion is
   that verdict when both agree, else "mixed". Epochs to the target error are reported too.
3. It overfits: the generalisation gap (final validation error - final EMA training error) is
   larger than ``none``'s; verdict from the fraction of pairs. The rise of the validation error
   after its best epoch (final - best) is reported too.
4. It does not beat batch norm: batch norm's final validation error is at most its own; verdict
   from the fraction of pairs. Online half (batch size 1): per data set and arch, batch norm
   *fails* when its mean final validation error is at least :data:`NEAR_CHANCE` x chance
   (chance = 1 - 1/num_classes), or when it has lost at least :data:`FAR_WORSE` of the way from
   the shift/scale error to chance; shift/scale *learns* when ``shift-layer+scale-layer`` (or,
   if it did not run, the best shift/scale variant) has an error at most :data:`LEARNS_BELOW` x
   chance. The half holds for an arch when both happen; verdict from the fraction of archs.
   Without num_classes, batch norm fails when its error is at least twice the reference's
   and the reference learns when its error is below batch norm's.
   The conclusion is the verdict of its tested halves when they agree, else "mixed".
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from chainrule import plot as _plot
from chainrule.experiments.shift_scale.models import VARIANTS
from chainrule.io import atomic_write

#: The nine variants that add shift and/or scale layers.
SHIFT_SCALE_VARIANTS = VARIANTS[2:]
#: The variant the thesis's conclusions are about, and its two references.
CANDIDATE, BASELINE, BATCHNORM = "shift-layer+scale-layer", "none", "batchnorm"
MODES = ("element", "channel", "layer")

#: The columns of results.csv, in order; :data:`EXTRA_COLUMNS` follow them.
COLUMNS = (
    "variant", "arch", "dropout", "lr", "seed", "epochs", "batch_size",
    "final_train_error_ema", "final_val_error", "best_val_error", "best_epoch",
    "epochs_to_target", "time_s", "status",
)
EXTRA_COLUMNS = ("error", "run_dir")

#: A claim holding in at least this fraction of the pairs is "supported".
SUPPORTED_AT = 2 / 3
#: A claim holding in at most this fraction of the pairs is "not supported".
NOT_SUPPORTED_AT = 1 / 3
#: Batch norm is "at chance" at batch size 1 when its error is >= NEAR_CHANCE x chance.
NEAR_CHANCE = 0.9
#: A variant "learns" when its error is <= LEARNS_BELOW x chance.
LEARNS_BELOW = 0.75
#: Batch norm is "far worse" when it lost this fraction of the way from shift/scale to chance.
FAR_WORSE = 0.5

SUPPORTED, NOT_SUPPORTED, MIXED = "supported", "not supported", "mixed"
NOT_TESTED = "not tested in these runs"

#: Line colours and styles: blues shift, oranges scale, greens both; light to dark by mode.
_COLOURS = {
    "none": "#000000", "batchnorm": "#7f7f7f",
    "shift-element": "#9ecae1", "shift-channel": "#4292c6", "shift-layer": "#08519c",
    "scale-element": "#fdae6b", "scale-channel": "#f16913", "scale-layer": "#a63603",
    "shift-element+scale-element": "#a1d99b", "shift-channel+scale-channel": "#41ab5d",
    "shift-layer+scale-layer": "#006d2c",
}
_EXTRA_COLOURS = ("#e377c2", "#bcbd22", "#17becf", "#8c564b", "#9467bd")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


# -- small helpers --------------------------------------------------------------------------------


def _variant_order(variant) -> tuple:
    """Sort key: the study's order, unknown variants after, by name."""
    name = str(variant)
    return (VARIANTS.index(name), "") if name in VARIANTS else (len(VARIANTS), name)


def _sortable(value) -> tuple:
    """A sort key that puts None last and never compares numbers with strings."""
    if value is None:
        return (2, 0, "")
    if isinstance(value, (bool, int, float, np.number)):
        return (0, float(value), "")
    return (1, 0, str(value))


def _sort_key(row: dict) -> tuple:
    """arch, dropout, lr, seed (then data set, batch size, epochs), then the variant order."""
    keys = ("arch", "dropout", "lr", "seed", "dataset", "batch_size", "epochs")
    return tuple(_sortable(row.get(k)) for k in keys) + (_variant_order(row.get("variant")),)


def _number(row: dict, key: str) -> float | None:
    """The finite number ``row[key]``, or None when absent, empty or not finite."""
    value = row.get(key)
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _is_ok(row: dict) -> bool:
    return row.get("status") == "ok"


def _mean(values: Iterable) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _std(values: Iterable) -> float | None:
    """The sample standard deviation (ddof 1), None for fewer than two values."""
    values = [v for v in values if v is not None]
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _pct(value: float | None) -> str:
    """An error rate as a percentage ("12.34%"), "n/a" for None."""
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _pp(value: float | None) -> str:
    """A difference of error rates in percentage points, signed ("+1.20 pp")."""
    return "n/a" if value is None else f"{100 * value:+.2f} pp"


def _fraction_text(count: int, total: int) -> str:
    return f"{count}/{total} ({100 * count / total:.0f}%)" if total else "0/0"


def _verdict(fraction: float | None) -> str:
    """The verdict for a claim holding in ``fraction`` of the pairs (None: no pairs)."""
    if fraction is None:
        return NOT_TESTED
    if fraction >= SUPPORTED_AT - 1e-12:
        return SUPPORTED
    if fraction <= NOT_SUPPORTED_AT + 1e-12:
        return NOT_SUPPORTED
    return MIXED


def _combine(verdicts: Iterable[str]) -> str:
    """The common verdict of the tested parts, "mixed" when they differ."""
    tested = {v for v in verdicts if v != NOT_TESTED}
    if not tested:
        return NOT_TESTED
    return tested.pop() if len(tested) == 1 else MIXED


def _lr_text(lr) -> str:
    return f"{float(lr):g}" if _number({"lr": lr}, "lr") is not None else str(lr)


def _join(items: Iterable) -> str:
    items = [str(i) for i in items]
    return ", ".join(items) if items else "none"


# -- atomic writing -------------------------------------------------------------------------------


def _atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(str(path), lambda file: file.write(text.encode("utf-8")))
    return path


def _atomic_save_figure(figure, path: Path) -> Path:
    """Save ``figure`` as PNG to a temporary file beside ``path``, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(str(path), lambda file: figure.savefig(file, format="png"))
    return path


# -- the study: rows, run folders, settings -------------------------------------------------------


class _Study:
    """The rows, split into ok/failed/main/online, with cached reads of the runs' folders."""

    def __init__(self, directory: Path, rows: list[dict]):
        self.directory = directory
        self.rows = sorted((dict(row) for row in rows), key=_sort_key)
        self.ok = [row for row in self.rows if _is_ok(row)]
        self.failed = [row for row in self.rows if not _is_ok(row)]
        self.online = [row for row in self.ok if row.get("batch_size") == 1]
        batched = [row for row in self.ok if row.get("batch_size") != 1]
        self.main = batched if batched else list(self.ok)
        self.several_datasets = len({row.get("dataset") for row in self.rows}) > 1
        self.several_batch_sizes = len({row.get("batch_size") for row in self.rows}) > 1
        self._curves: dict[str, dict | None] = {}
        self._learned: dict[str, list | None] = {}
        self.unreadable: set[str] = set()

    def run_dir(self, row: dict) -> Path | None:
        """The run's folder: relative paths are taken from the report's directory first."""
        value = row.get("run_dir")
        if not value:
            return None
        path = Path(value)
        if path.is_absolute():
            return path
        beside = self.directory / path
        return beside if beside.exists() or not path.exists() else path

    def curves(self, row: dict) -> dict | None:
        """The run's curves.npz as a dict of arrays, None when missing or unreadable."""
        folder = self.run_dir(row)
        if folder is None:
            return None
        key = os.fspath(folder)
        if key not in self._curves:
            self._curves[key] = _read_curves(folder / "curves.npz")
            if self._curves[key] is None:
                self.unreadable.add(os.fspath(folder / "curves.npz"))
        return self._curves[key]

    def learned(self, row: dict) -> list:
        """The run's learned.json (a list of dicts), [] when missing or unreadable."""
        folder = self.run_dir(row)
        if folder is None:
            return []
        key = os.fspath(folder)
        if key not in self._learned:
            self._learned[key] = _read_learned(folder / "learned.json")
        return self._learned[key] or []

    def setting_label(self, setting: tuple) -> str:
        """"mlp, dropout" for a setting (data set, arch, dropout, batch size)."""
        dataset, arch, dropout, batch_size = setting
        label = f"{arch}, {'dropout' if dropout else 'no dropout'}"
        if self.several_batch_sizes:
            label += f", batch {batch_size}"
        return f"{dataset}: {label}" if self.several_datasets else label


def _read_curves(path: Path) -> dict | None:
    """A run's curves.npz as a dict of arrays; None when missing, unreadable or partial."""
    try:
        with np.load(path, allow_pickle=False) as data:
            curves = {key: np.asarray(data[key]) for key in data.files}
    except (OSError, ValueError, KeyError):
        return None
    needed = ("step", "train_error_ema", "epoch", "val_error")
    return curves if all(key in curves for key in needed) else None


def _read_learned(path: Path) -> list | None:
    """A run's learned.json as a list of dicts; None when missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as file:
            value = json.load(file)
    except (OSError, ValueError):
        return None
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) \
        else None


def _setting(row: dict) -> tuple:
    """The setting of a run: (data set, arch, dropout, batch size)."""
    return (row.get("dataset"), row.get("arch"), bool(row.get("dropout")), row.get("batch_size"))


def _pair_key(row: dict) -> tuple:
    """What two variants' runs share to be paired: setting, lr, seed, epochs."""
    return _setting(row) + (row.get("lr"), row.get("seed"), row.get("epochs"))


def _pairs(rows: list[dict], first: str, second: str) -> list[tuple[dict, dict]]:
    """(first's run, second's run) for every pair key where both ran ok, in row order."""
    by_key: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        by_key[_pair_key(row)].setdefault(row.get("variant"), row)
    return [(runs[first], runs[second]) for runs in by_key.values()
            if first in runs and second in runs]


def _paired(pairs: list[tuple[dict, dict]], measure: Callable[[dict], float | None]) -> dict:
    """Differences measure(first) - measure(second) over the pairs where both are known."""
    values = [(measure(a), measure(b)) for a, b in pairs]
    values = [(a, b) for a, b in values if a is not None and b is not None]
    differences = [a - b for a, b in values]
    return {
        "pairs": len(differences),
        "lower": sum(d < 0 for d in differences),
        "higher": sum(d > 0 for d in differences),
        "ties": sum(d == 0 for d in differences),
        "mean_first": _mean(a for a, _ in values),
        "mean_second": _mean(b for _, b in values),
        "mean_difference": _mean(differences),
    }


def _fraction(stats: dict, side: str) -> float | None:
    """The fraction of pairs on ``side`` ("lower", "higher", or "not_higher")."""
    if not stats["pairs"]:
        return None
    count = stats["lower"] + stats["ties"] if side == "not_higher" else stats[side]
    return count / stats["pairs"]


# -- conclusion 1: the best of the nine ------------------------------------------------------------


def _ranks(values: dict) -> dict:
    """Rank 1 for the lowest value; ties share their mean rank."""
    order = sorted(values, key=values.get)
    ranks, start = {}, 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for index in range(start, end + 1):
            ranks[order[index]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _conclusion_best(study: _Study) -> dict:
    """(1): mean best_val_error of the nine per setting, ranks, and the candidate's mean rank."""
    grouped: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for row in study.main:
        if row.get("variant") in SHIFT_SCALE_VARIANTS:
            grouped[_setting(row)][row["variant"]].append(_number(row, "best_val_error"))
    settings = []
    for setting in sorted(grouped, key=lambda s: tuple(_sortable(v) for v in s)):
        means = {v: _mean(x) for v, x in grouped[setting].items()}
        means = {v: m for v, m in means.items() if m is not None}
        if CANDIDATE in means and len(means) > 1:
            ranks = _ranks(means)
            settings.append({"setting": setting, "label": study.setting_label(setting),
                             "means": means, "ranks": ranks,
                             "winner": min(means, key=means.get),
                             "candidate_wins": ranks[CANDIDATE] == min(ranks.values())})
    return _best_verdict(settings)


def _best_verdict(settings: list[dict]) -> dict:
    """(1)'s verdict from the settings' ranks: mean rank per variant, wins, losses."""
    if not settings:
        return {"verdict": NOT_TESTED, "settings": []}
    variants = sorted({v for s in settings for v in s["means"]}, key=_variant_order)
    mean_ranks = {v: _mean(s["ranks"].get(v) for s in settings) for v in variants}
    best_rank = min(mean_ranks.values())
    wins = [s["label"] for s in settings if s["candidate_wins"]]
    if mean_ranks[CANDIDATE] <= best_rank + 1e-12:
        verdict = SUPPORTED
    else:
        verdict = MIXED if wins else NOT_SUPPORTED
    return {"verdict": verdict, "settings": settings, "mean_ranks": mean_ranks,
            "candidate_mean_rank": mean_ranks[CANDIDATE],
            "best_mean_rank_variant": min(mean_ranks, key=mean_ranks.get),
            "wins": wins, "losses": [s["label"] for s in settings if not s["candidate_wins"]]}


# -- conclusion 2: faster than none ---------------------------------------------------------------


def _first_epoch_ema(curves: dict) -> float | None:
    """The EMA training error at the last step of epoch 1 (interpolated if decimated)."""
    steps = np.asarray(curves["step"], dtype=np.float64)
    ema = np.asarray(curves["train_error_ema"], dtype=np.float64)
    if steps.size == 0 or "steps_per_epoch" not in curves:
        return None
    return float(np.interp(float(curves["steps_per_epoch"]), steps, ema))


def _mean_ema(curves: dict) -> float | None:
    """The area under the EMA training-error curve divided by the steps it spans."""
    steps = np.asarray(curves["step"], dtype=np.float64)
    ema = np.asarray(curves["train_error_ema"], dtype=np.float64)
    if steps.size == 0:
        return None
    if steps.size == 1 or steps[-1] == steps[0]:
        return float(ema.mean())
    area = np.sum((ema[1:] + ema[:-1]) / 2 * np.diff(steps))
    return float(area / (steps[-1] - steps[0]))


def _curve_measure(study: _Study, measure: Callable[[dict], float | None]):
    """A row -> number function that applies ``measure`` to the run's curves."""
    def value(row: dict) -> float | None:
        curves = study.curves(row)
        return None if curves is None else measure(curves)
    return value


def _epochs_to_target(pairs: list[tuple[dict, dict]]) -> dict:
    """Pairs where either run reached the target: how often the candidate got there first."""
    def epochs(row):
        value = _number(row, "epochs_to_target")
        return math.inf if value is None else value
    reached = [(epochs(a), epochs(b)) for a, b in pairs
               if math.isfinite(epochs(a)) or math.isfinite(epochs(b))]
    both = [(a, b) for a, b in reached if math.isfinite(a) and math.isfinite(b)]
    return {"pairs": len(reached), "fewer": sum(a < b for a, b in reached),
            "more": sum(a > b for a, b in reached),
            "candidate_only": sum(math.isfinite(a) and not math.isfinite(b) for a, b in reached),
            "baseline_only": sum(math.isfinite(b) and not math.isfinite(a) for a, b in reached),
            "both": len(both), "mean_first": _mean(a for a, _ in both),
            "mean_second": _mean(b for _, b in both)}


def _conclusion_faster(study: _Study) -> dict:
    """(2): first-epoch EMA training error and mean EMA training error, paired against none."""
    pairs = _pairs(study.main, CANDIDATE, BASELINE)
    first = _paired(pairs, _curve_measure(study, _first_epoch_ema))
    area = _paired(pairs, _curve_measure(study, _mean_ema))
    first["verdict"] = _verdict(_fraction(first, "lower"))
    area["verdict"] = _verdict(_fraction(area, "lower"))
    return {"verdict": _combine([first["verdict"], area["verdict"]]), "pairs": len(pairs),
            "first_epoch": first, "mean_ema": area, "epochs_to_target": _epochs_to_target(pairs)}


# -- conclusion 3: overfitting --------------------------------------------------------------------


def _gap(row: dict) -> float | None:
    """The generalisation gap: final validation error - final EMA training error."""
    val, train = _number(row, "final_val_error"), _number(row, "final_train_error_ema")
    return None if val is None or train is None else val - train


def _rise(row: dict) -> float | None:
    """How much the validation error rose after its best epoch: final - best."""
    final, best = _number(row, "final_val_error"), _number(row, "best_val_error")
    return None if final is None or best is None else final - best


def _conclusion_overfits(study: _Study) -> dict:
    """(3): the generalisation gap and the rise after the best epoch, paired against none."""
    pairs = _pairs(study.main, CANDIDATE, BASELINE)
    gap, rise = _paired(pairs, _gap), _paired(pairs, _rise)
    return {"verdict": _verdict(_fraction(gap, "higher")), "gap": gap, "rise": rise}


# -- conclusion 4: batch norm, and online learning ------------------------------------------------


def _conclusion_batchnorm(study: _Study) -> dict:
    """(4): batch norm against the candidate (paired), then the batch-size-1 runs."""
    pairs = _pairs(study.main, BATCHNORM, CANDIDATE)
    final = _paired(pairs, lambda row: _number(row, "final_val_error"))
    best = _paired(pairs, lambda row: _number(row, "best_val_error"))
    final["verdict"] = _verdict(_fraction(final, "not_higher"))
    online = _online(study)
    return {"verdict": _combine([final["verdict"], online["verdict"]]), "final": final,
            "best": best, "online": online}


def _chance(rows: list[dict]) -> float | None:
    """The error of guessing, 1 - 1/num_classes; None when num_classes is unknown."""
    classes = [_number(row, "num_classes") for row in rows]
    classes = [c for c in classes if c is not None and c >= 2]
    return 1 - 1 / max(classes) if classes else None


def _online_arch(rows: list[dict]) -> dict:
    """Batch size 1 on one (data set, arch): mean final val error per variant, and the tests."""
    errors: dict[str, list] = defaultdict(list)
    for row in rows:
        errors[row.get("variant")].append(_number(row, "final_val_error"))
    means = {v: _mean(x) for v, x in errors.items() if _mean(x) is not None}
    chance = _chance(rows)
    shift_scale = {v: m for v, m in means.items() if v in SHIFT_SCALE_VARIANTS}
    reference = CANDIDATE if CANDIDATE in shift_scale else (
        min(shift_scale, key=shift_scale.get) if shift_scale else None)
    result = {"means": means, "chance": chance, "reference": reference,
              "runs": {v: len(x) for v, x in errors.items()}}
    if BATCHNORM not in means or reference is None:
        return {**result, "tested": False}
    return {**result, "tested": True, **_online_tests(means[BATCHNORM], means[reference], chance)}


def _online_tests(batchnorm: float, reference: float, chance: float | None) -> dict:
    """Whether batch norm fails and the shift/scale reference learns (the rules above)."""
    if chance is None:
        fails, learns = batchnorm >= 2 * reference, reference < batchnorm
        at_chance = False
    else:
        at_chance = batchnorm >= NEAR_CHANCE * chance
        far_worse = batchnorm - reference >= FAR_WORSE * max(chance - reference, 0.0)
        fails = at_chance or (far_worse and batchnorm > reference)
        learns = reference <= LEARNS_BELOW * chance
    return {"batchnorm_at_chance": at_chance, "batchnorm_fails": bool(fails),
            "shift_scale_learns": bool(learns), "holds": bool(fails and learns)}


def _online(study: _Study) -> dict:
    """The online half: per (data set, arch) at batch size 1; verdict from where it holds."""
    grouped: dict[tuple, list] = defaultdict(list)
    for row in study.online:
        grouped[(row.get("dataset"), row.get("arch"))].append(row)
    archs = {key: _online_arch(rows) for key, rows in sorted(grouped.items(),
                                                             key=lambda kv: str(kv[0]))}
    tested = [result for result in archs.values() if result["tested"]]
    fraction = sum(r["holds"] for r in tested) / len(tested) if tested else None
    return {"verdict": _verdict(fraction), "archs": archs, "tested": len(tested),
            "holds": sum(r["holds"] for r in tested)}


# -- results.csv ----------------------------------------------------------------------------------


def _csv_cell(value) -> str:
    """A CSV cell: empty for None and NaN, plain Python text otherwise."""
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "" if math.isnan(value) else str(value)
    if isinstance(value, (np.floating, np.integer)):
        return str(value.item())
    return str(value)


def _write_csv(study: _Study) -> Path:
    """results.csv: :data:`COLUMNS` then :data:`EXTRA_COLUMNS`, one row per run."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS + EXTRA_COLUMNS)
    for row in study.rows:
        writer.writerow([_csv_cell(row.get(k)) for k in COLUMNS + EXTRA_COLUMNS])
    return _atomic_write_text(study.directory / "results.csv", buffer.getvalue())


# -- figures --------------------------------------------------------------------------------------


def _have_matplotlib() -> bool:
    """Whether matplotlib can be imported (the [plot] extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _colour(variant: str) -> str:
    """A variant's colour, the same in every figure."""
    if variant in _COLOURS:
        return _COLOURS[variant]
    return _EXTRA_COLOURS[sum(map(ord, str(variant))) % len(_EXTRA_COLOURS)]


def _linestyle(variant: str) -> str:
    mode = str(variant).rsplit("-", 1)[-1]
    return {"element": ":", "channel": "--"}.get(mode, "-")


def _curve_group(row: dict) -> tuple:
    """The runs one curves figure shows: data set, arch, dropout, lr, batch size."""
    return (row.get("dataset"), row.get("arch"), bool(row.get("dropout")), row.get("lr"),
            row.get("batch_size"))


def _curve_name(study: _Study, group: tuple) -> str:
    """The curves figure's file name (without .png)."""
    dataset, arch, dropout, lr, batch_size = group
    name = f"{arch}-{'dropout' if dropout else 'nodropout'}-lr{_lr_text(lr)}"
    if study.several_batch_sizes:
        name += f"-bs{batch_size}"
    return f"{dataset}-{name}" if study.several_datasets else name


def _mean_curve(curves: list[tuple[np.ndarray, np.ndarray]]):
    """The mean of several (x, y) curves on the first one's x, over their common range."""
    end = min(float(x[-1]) for x, _ in curves)
    grid = curves[0][0][curves[0][0] <= end]
    stacked = [np.interp(grid, x, y) for x, y in curves]
    return grid, np.mean(stacked, axis=0)


def _draw_variant(axes, runs: list[dict], variant: str) -> None:
    """A variant's seeds (faint) and their mean on the two panels."""
    style = {"color": _colour(variant), "linestyle": _linestyle(variant)}
    width = 2.4 if variant == CANDIDATE else 1.5
    panels = (("step", "train_error_ema"), ("epoch", "val_error"))
    for ax, (x_key, y_key) in zip(axes, panels):
        curves = [(np.asarray(c[x_key], np.float64), np.asarray(c[y_key], np.float64))
                  for c in runs if len(c[x_key])]
        if not curves:
            continue
        if len(curves) > 1:
            for x, y in curves:
                ax.plot(x, y, linewidth=0.7, alpha=0.25, **style)
        grid, mean = _mean_curve(curves)
        marker = "o" if y_key == "val_error" and len(grid) <= 30 else None
        ax.plot(grid, mean, linewidth=width, marker=marker, markersize=3, label=variant,
                **style)


def _curves_figure(study: _Study, group: tuple, rows: list[dict]):
    """The two-panel curves figure of one group; None when no run has curves."""
    by_variant: dict[str, list] = defaultdict(list)
    for row in rows:
        curves = study.curves(row)
        if curves is not None:
            by_variant[row["variant"]].append(curves)
    if not by_variant:
        return None
    figure = _plot._figure(14.0, 5.0)
    axes = figure.subplots(1, 2)
    for variant in sorted(by_variant, key=_variant_order):
        _draw_variant(axes, by_variant[variant], variant)
    _label_curves(axes, figure, study, group, rows)
    return figure


def _label_curves(axes, figure, study: _Study, group: tuple, rows: list[dict]) -> None:
    """Axis labels, titles, the legend and the figure title of a curves figure."""
    from matplotlib.ticker import MaxNLocator

    dataset, arch, dropout, lr, batch_size = group
    axes[0].set(xlabel="step", ylabel="training error (EMA per step)",
                title="Training error (EMA)")
    axes[1].set(xlabel="epoch", ylabel="validation error", title="Validation error")
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes:
        ax.grid(True, alpha=0.3)
    handles, labels = axes[1].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center right", fontsize=8)
    seeds = len({row.get("seed") for row in rows})
    figure.suptitle(f"{dataset}, {arch}, {'dropout' if dropout else 'no dropout'}, "
                    f"lr {_lr_text(lr)}, batch {batch_size}: mean over {seeds} seed(s)")
    figure.tight_layout(rect=(0, 0, 0.84, 0.95))


def _draw_curves(study: _Study) -> list[Path]:
    """curves/*.png, one per (data set, arch, dropout, lr, batch size) group."""
    groups: dict[tuple, list] = defaultdict(list)
    for row in study.ok:
        groups[_curve_group(row)].append(row)
    paths = []
    for group, rows in groups.items():
        figure = _curves_figure(study, group, rows)
        if figure is not None:
            path = study.directory / "curves" / f"{_curve_name(study, group)}.png"
            paths.append(_atomic_save_figure(figure, path))
    return paths


def _learned_points(study: _Study) -> dict[tuple, list[dict]]:
    """Per panel row (data set, arch, dropout, kind): one point per run, position and kind.

    The key holds ``kind == "scale"`` before the kind, so that shift rows sort first.
    """
    panels: dict[tuple, list] = defaultdict(list)
    for row in study.ok:
        if row.get("variant") not in SHIFT_SCALE_VARIANTS or row.get("diverged"):
            continue  # a diverged run's values (up to 1e15) say nothing and hide the rest
        for entry in study.learned(row):
            mean = _number(entry, "mean")
            if mean is None or entry.get("kind") not in ("shift", "scale"):
                continue
            key = (row.get("dataset"), row.get("arch"), bool(row.get("dropout")),
                   entry["kind"] == "scale", entry["kind"])
            panels[key].append({"row": row, "mode": entry.get("mode"), "mean": mean,
                                "std": _number(entry, "std") or 0.0,
                                "position": int(entry.get("position", 0))})
    return panels


def _slot(point: dict) -> tuple:
    """Where a point sits within a position: by variant, then lr, then batch size."""
    row = point["row"]
    return (_variant_order(row["variant"]), _sortable(row.get("lr")),
            _sortable(row.get("batch_size")))


def _draw_learned_panel(ax, points: list[dict], seeds: list) -> None:
    """x = position (+ an offset per variant and learning rate), y = mean, marker per seed."""
    slots = sorted({_slot(p) for p in points})
    offsets = np.linspace(-0.35, 0.35, len(slots)) if len(slots) > 1 else [0.0]
    where = dict(zip(slots, offsets))
    for point in points:
        row = point["row"]
        x = point["position"] + where[_slot(point)]
        marker = _MARKERS[seeds.index(row.get("seed")) % len(_MARKERS)]
        ax.errorbar(x, point["mean"], yerr=point["std"], fmt=marker, markersize=4,
                    color=_colour(row["variant"]), elinewidth=0.6, capsize=0, alpha=0.85)
    positions = sorted({p["position"] for p in points})
    ax.set_xticks(positions)


def _learned_figure(study: _Study, panels: dict[tuple, list]):
    """The learned-values figure: rows (arch, dropout, kind), columns the modes."""
    keys = sorted(panels, key=lambda k: tuple(_sortable(v) for v in k))
    seeds = sorted({p["row"].get("seed") for ps in panels.values() for p in ps}, key=_sortable)
    positions = max(len({p["position"] for p in ps}) for ps in panels.values())
    height = 2.8 * len(keys) + 1.2
    figure = _plot._figure(3 * max(4.0, 0.7 * positions + 1.5), height)
    axes = figure.subplots(len(keys), len(MODES), squeeze=False)
    for axes_row, key in zip(axes, keys):
        dataset, arch, dropout, _, kind = key
        for ax, mode in zip(axes_row, MODES):
            points = [p for p in panels[key] if p["mode"] == mode]
            if points:
                _draw_learned_panel(ax, points, seeds)
            ax.axhline(0.0 if kind == "shift" else 1.0, color="gray", linewidth=0.8,
                       linestyle="--")
            prefix = f"{dataset}: " if study.several_datasets else ""
            ax.set_title(f"{prefix}{arch}, {'dropout' if dropout else 'no dropout'}: "
                         f"{kind}-{mode}", fontsize=9)
            ax.set(xlabel="position (0 = after the input)", ylabel=f"learned {kind}")
            ax.grid(True, alpha=0.3)
    _learned_legend(figure, panels, seeds, height)
    return figure


def _learned_legend(figure, panels: dict[tuple, list], seeds: list, height: float) -> None:
    """The legend (colour = variant, marker = seed) and the explaining title."""
    from matplotlib.lines import Line2D

    variants = sorted({p["row"]["variant"] for ps in panels.values() for p in ps},
                      key=_variant_order)
    lrs = sorted({p["row"].get("lr") for ps in panels.values() for p in ps}, key=_sortable)
    handles = [Line2D([], [], color=_colour(v), marker="o", linestyle="", label=v)
               for v in variants]
    handles += [Line2D([], [], color="black", marker=_MARKERS[i % len(_MARKERS)],
                       linestyle="", label=f"seed {s}") for i, s in enumerate(seeds)]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8)
    figure.suptitle("Learned shift/scale values: mean over the layer's weights per run "
                    "(bars: their spread, ±1 std)\nwithin a position: variant, then learning "
                    f"rate ({_join(_lr_text(lr) for lr in lrs)}) left to right", fontsize=10)
    figure.tight_layout(rect=(0, 0.6 / height, 1, 1 - 0.5 / height))


def _draw_learned(study: _Study) -> Path | None:
    """learned.png, or None when no run learned shift/scale values."""
    panels = _learned_points(study)
    if not panels:
        return None
    return _atomic_save_figure(_learned_figure(study, panels), study.directory / "learned.png")


def _draw_figures(study: _Study) -> list[Path]:
    """All PNGs, or none (with a printed note) when matplotlib is missing."""
    if not _have_matplotlib():
        print("chainrule: matplotlib is not installed, so the report has no figures "
              f"(curves/*.png, learned.png): {_plot.PLOT_EXTRA_HINT}")
        return []
    paths = _draw_curves(study)
    learned = _draw_learned(study)
    return paths + ([learned] if learned is not None else [])


# -- report.md ------------------------------------------------------------------------------------


def _values_text(rows: list[dict], key: str, format_value=str) -> str:
    values = sorted({row.get(key) for row in rows}, key=_sortable)
    return _join(format_value(v) for v in values)


def _section_setup(study: _Study) -> list[str]:
    """The setup, counted from the rows."""
    rows, ok = study.rows, study.ok
    variants = sorted({row.get("variant") for row in rows}, key=_variant_order)
    time_s = sum(_number(row, "time_s") or 0.0 for row in ok)
    targets = _values_text([r for r in ok if _number(r, "target_error") is not None],
                           "target_error", _pct)
    lines = [
        "## Setup", "",
        f"- runs: {len(rows)} ({len(ok)} ok, {len(study.failed)} failed), "
        f"{time_s / 3600:.2f} h of training in the ok runs",
        f"- data sets: {_values_text(rows, 'dataset')}; classes: "
        f"{_values_text(rows, 'num_classes')}",
        f"- architectures: {_values_text(rows, 'arch')}",
        f"- dropout: {_values_text(rows, 'dropout', lambda d: 'on' if d else 'off')}",
        f"- learning rates (SGD, momentum 0.9): {_values_text(rows, 'lr', _lr_text)}",
        f"- seeds: {_values_text(rows, 'seed')}",
        f"- epochs: {_values_text(rows, 'epochs')}; batch sizes: "
        f"{_values_text(rows, 'batch_size')}",
        f"- variants ({len(variants)}): {_join(variants)}",
        f"- target validation error (for epochs to target): {targets if ok else 'n/a'}",
    ]
    diverged = [row for row in ok if row.get("diverged")]
    if diverged:
        counts = defaultdict(int)
        for row in diverged:
            counts[row.get("variant")] += 1
        lines.append(f"- diverged (the loss became NaN or infinite; training stopped there, "
                     f"and the run keeps its last errors): {len(diverged)} runs: " + ", ".join(
                         f"{variant} {counts[variant]}"
                         for variant in sorted(counts, key=_variant_order))
                     + "; learned.png leaves them out")
    if study.online and len(study.main) != len(study.ok):
        lines.append(f"- conclusions (1)-(3) and the first half of (4) use the "
                     f"{len(study.main)} ok runs with batch size > 1; the "
                     f"{len(study.online)} with batch size 1 are the online test of (4)")
    return lines + [""]


def _mean_std_over_seeds(rows: list[dict], key: str) -> tuple:
    """Per lr: mean and std over seeds; then both averaged over the learning rates."""
    by_lr: dict = defaultdict(list)
    for row in rows:
        by_lr[row.get("lr")].append(_number(row, key))
    return _mean(_mean(v) for v in by_lr.values()), _mean(_std(v) for v in by_lr.values())


def _cell(mean: float | None, std: float | None, bold: bool) -> str:
    text = "–" if mean is None else f"{100 * mean:.2f}" + ("" if std is None
                                                           else f" ± {100 * std:.2f}")
    return f"**{text}**" if bold and mean is not None else text


def _table(columns: list[str], cells: dict[str, list[tuple]]) -> list[str]:
    """A Markdown table: rows = variants, cells (mean, std); the lowest mean bold per column."""
    lowest = []
    for index in range(len(columns)):
        means = [c[index][0] for c in cells.values() if c[index][0] is not None]
        lowest.append(min(means) if means else None)
    lines = ["| variant | " + " | ".join(columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for variant, row in cells.items():
        text = [_cell(m, s, m is not None and m == lowest[i]) for i, (m, s) in enumerate(row)]
        lines.append(f"| {variant} | " + " | ".join(text) + " |")
    return lines


def _section_tables(study: _Study) -> list[str]:
    """Final validation error per variant and setting, then per learning rate."""
    by_setting: dict[tuple, list] = defaultdict(list)
    for row in study.ok:
        by_setting[_setting(row)].append(row)
    settings = sorted(by_setting, key=lambda s: tuple(_sortable(v) for v in s))
    variants = sorted({row["variant"] for row in study.ok}, key=_variant_order)
    cells = {v: [_mean_std_over_seeds([r for r in by_setting[s] if r["variant"] == v],
                                      "final_val_error") for s in settings]
             for v in variants}
    lines = ["## Final validation error", "",
             "Mean ± std over seeds (in %), averaged over the learning rates; the lowest "
             "per column in bold.", ""]
    lines += _table([study.setting_label(s) for s in settings], cells) + [""]
    for setting in settings:
        lines += _per_lr_table(study, setting, by_setting[setting], variants)
    return lines


def _per_lr_table(study: _Study, setting: tuple, rows: list[dict], variants: list) -> list:
    """One setting's table: variants x learning rates."""
    lrs = sorted({row.get("lr") for row in rows}, key=_sortable)
    cells = {}
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        if not mine:
            continue
        cells[variant] = [_mean_std_over_seeds([r for r in mine if r.get("lr") == lr],
                                               "final_val_error") for lr in lrs]
    return ([f"### {study.setting_label(setting)}: per learning rate", ""] +
            _table([f"lr {_lr_text(lr)}" for lr in lrs], cells) + [""])


def _section_best(result: dict) -> list[str]:
    """Conclusion (1): the nine variants' mean best validation error and ranks."""
    lines = [f"## (1) Layer-wise shift-and-scale is the best of the nine: {result['verdict']}",
             ""]
    if result["verdict"] == NOT_TESTED:
        return lines + [f"No setting has ok runs of `{CANDIDATE}` and another shift/scale "
                        "variant.", ""]
    settings = result["settings"]
    variants = sorted(result["mean_ranks"], key=_variant_order)
    lines += ["Mean best validation error (in %) over learning rates and seeds, with the rank "
              "among the nine in each setting (1 = lowest):", "",
              "| variant | " + " | ".join(s["label"] for s in settings) + " | mean rank |",
              "|---|" + "---:|" * (len(settings) + 1)]
    for variant in variants:
        cells = [("–" if variant not in s["means"] else
                  f"{100 * s['means'][variant]:.2f} ({s['ranks'][variant]:g})")
                 for s in settings]
        cells = [f"**{c}**" if s["ranks"].get(variant) == min(s["ranks"].values()) else c
                 for c, s in zip(cells, settings)]
        lines.append(f"| {variant} | " + " | ".join(cells) +
                     f" | {result['mean_ranks'][variant]:.2f} |")
    best = result["best_mean_rank_variant"]
    where = (f"in every setting ({'; '.join(result['wins'])})" if not result["losses"] else
             f"in {_fraction_text(len(result['wins']), len(settings))} settings "
             f"({'; '.join(result['wins']) or 'none'}), not in {'; '.join(result['losses'])}")
    lines += ["", f"`{CANDIDATE}` has mean rank {result['candidate_mean_rank']:.2f} over "
              f"{len(settings)} setting(s); the best mean rank is "
              f"{result['mean_ranks'][best]:.2f} (`{best}`). It is the lowest {where}.", ""]
    return lines


def _paired_sentence(stats: dict, what: str, side: str, first: str, second: str) -> str:
    """A bullet: how often ``first`` is lower/higher, the means, the difference."""
    if not stats["pairs"]:
        return f"- {what}: no pair with both values."
    count = stats["lower"] if side == "lower" else stats["higher"]
    verdict = f" → {stats['verdict']}" if "verdict" in stats else ""
    return (f"- {what}: `{first}` {side} in {_fraction_text(count, stats['pairs'])} pairs "
            f"({stats['ties']} ties); mean {_pct(stats['mean_first'])} vs "
            f"{_pct(stats['mean_second'])} for `{second}`, mean difference "
            f"{_pp(stats['mean_difference'])}{verdict}")


def _section_faster(result: dict) -> list[str]:
    """Conclusion (2): first-epoch and mean EMA training error, epochs to target."""
    lines = [f"## (2) It trains faster than no change: {result['verdict']}", "",
             f"Paired with `{BASELINE}` (same arch, dropout, learning rate, seed): "
             f"{result['pairs']} pair(s).", ""]
    lines.append(_paired_sentence(result["first_epoch"], "EMA training error at the end of "
                                  "epoch 1", "lower", CANDIDATE, BASELINE))
    lines.append(_paired_sentence(result["mean_ema"], "mean EMA training error per step "
                                  "(area under the curve)", "lower", CANDIDATE, BASELINE))
    target = result["epochs_to_target"]
    if target["pairs"]:
        lines.append(f"- epochs to the target error: `{CANDIDATE}` first in "
                     f"{_fraction_text(target['fewer'], target['pairs'])} of the pairs where "
                     f"either reached it, later in {target['more']}; only `{CANDIDATE}` reached "
                     f"it in {target['candidate_only']}, only `{BASELINE}` in "
                     f"{target['baseline_only']}" + _both_reached(target))
    else:
        lines.append("- epochs to the target error: neither reached it in any pair.")
    return lines + [""]


def _both_reached(target: dict) -> str:
    """The end of the epochs-to-target sentence: the mean epochs where both got there."""
    if not target["both"]:
        return "; they never both reached it."
    return (f"; where both did ({target['both']}): {target['mean_first']:.2f} vs "
            f"{target['mean_second']:.2f} epochs on average.")


def _section_overfits(result: dict) -> list[str]:
    """Conclusion (3): the generalisation gap and the rise after the best epoch."""
    gap, rise = result["gap"], result["rise"]
    lines = [f"## (3) It tends to overfit: {result['verdict']}", "",
             "Generalisation gap = final validation error − final EMA training error, paired "
             f"with `{BASELINE}`:", ""]
    lines.append(_paired_sentence({**gap, "verdict": result["verdict"]}, "gap", "higher",
                                  CANDIDATE, BASELINE))
    lines.append(_paired_sentence(rise, "rise of the validation error after its best epoch "
                                  "(final − best)", "higher", CANDIDATE, BASELINE))
    return lines + [""]


def _section_batchnorm(result: dict) -> list[str]:
    """Conclusion (4): batch norm vs the candidate, then the online half."""
    final, best = result["final"], result["best"]
    lines = [f"## (4) It does not beat batch norm, which cannot learn online: "
             f"{result['verdict']}", "", f"### Batch norm vs `{CANDIDATE}`: {final['verdict']}",
             ""]
    if final["pairs"]:
        not_higher = final["lower"] + final["ties"]
        lines += [f"Batch norm's final validation error is at most `{CANDIDATE}`'s in "
                  f"{_fraction_text(not_higher, final['pairs'])} pairs: mean "
                  f"{_pct(final['mean_first'])} vs {_pct(final['mean_second'])} (difference "
                  f"{_pp(final['mean_difference'])}); best validation error "
                  f"{_pct(best['mean_first'])} vs {_pct(best['mean_second'])} (difference "
                  f"{_pp(best['mean_difference'])}, batch norm lower in "
                  f"{_fraction_text(best['lower'], best['pairs'])}).", ""]
    else:
        lines += [f"No pair of ok `{BATCHNORM}` and `{CANDIDATE}` runs.", ""]
    return lines + _section_online(result["online"])


def _section_online(online: dict) -> list[str]:
    """The online half of (4): batch size 1, per arch, or how to test it."""
    lines = [f"### Online learning (batch size 1): {online['verdict']}", ""]
    if not online["archs"]:
        return lines + ["These runs have no batch-size-1 run, so this half was not tested. "
                        "To test it: `chainrule study shift-scale --batch-size 1 ...` (with the "
                        f"variants `{BATCHNORM}`, `{BASELINE}` and `{CANDIDATE}` at least).", ""]
    for (dataset, arch), result in online["archs"].items():
        lines += _online_arch_lines(dataset, arch, result)
    lines.append(f"It holds for {_fraction_text(online['holds'], online['tested'])} tested "
                 "arch(s).")
    return lines + [""]


def _online_arch_lines(dataset, arch, result: dict) -> list[str]:
    """One arch at batch size 1: errors per variant and the outcome of the tests."""
    chance = result["chance"]
    means = result["means"]
    lines = [f"**{dataset}, {arch}** (chance {_pct(chance)}): mean final validation error "
             "at batch size 1:", "", "| variant | error | runs |", "|---|---:|---:|"]
    for variant in sorted(means, key=_variant_order):
        lines.append(f"| {variant} | {_pct(means[variant])} | {result['runs'][variant]} |")
    lines.append("")
    if not result["tested"]:
        return lines + [f"Not tested: needs ok runs of `{BATCHNORM}` and a shift/scale "
                        "variant.", ""]
    reference, bn = result["reference"], means[BATCHNORM]
    state = ("fails (at chance)" if result["batchnorm_at_chance"] else
             "fails (far worse)" if result["batchnorm_fails"] else "still learns")
    vs_none = (f", {_pp(bn - means[BASELINE])} vs `{BASELINE}`" if BASELINE in means else "")
    learns = "learns" if result["shift_scale_learns"] else "does not learn well"
    lines += [f"Batch norm {state}: {_pct(bn)}{vs_none}, {_pp(bn - means[reference])} vs "
              f"`{reference}`, which {learns} ({_pct(means[reference])}). "
              f"{'The claim holds here.' if result['holds'] else 'The claim does not hold.'}",
              ""]
    return lines


def _section_learned(study: _Study) -> list[str]:
    """The candidate's learned layer-wise values per position: mean ± std over seeds."""
    cells: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))
    diverged = 0
    for row in study.main:
        if row.get("variant") != CANDIDATE:
            continue
        if row.get("diverged"):
            diverged += 1
            continue
        for entry in study.learned(row):
            value = _number(entry, "mean")
            if value is not None and entry.get("kind") in ("shift", "scale"):
                config = (row.get("arch"), bool(row.get("dropout")), row.get("lr"))
                cells[config][(int(entry.get("position", 0)), entry["kind"])].append(value)
    if not cells:
        return []
    lines = [f"## What `{CANDIDATE}` learns", "",
             "Learned shift b and scale s per position (0 = after the input), mean ± std over "
             "seeds" + (f" ({diverged} diverged run(s) left out)" if diverged else "") + ":",
             ""]
    for arch in sorted({c[0] for c in cells}, key=str):
        lines += _learned_table(arch, {c: v for c, v in cells.items() if c[0] == arch})
    return lines


def _learned_table(arch: str, cells: dict) -> list[str]:
    """One arch's table of learned b and s per (dropout, lr) and position."""
    positions = sorted({p for values in cells.values() for p, _ in values})
    lines = [f"**{arch}**", "", "| dropout, lr | " +
             " | ".join(f"position {p}" for p in positions) + " |",
             "|---|" + "---|" * len(positions)]
    for config in sorted(cells, key=lambda c: tuple(_sortable(v) for v in c)):
        texts = []
        for position in positions:
            parts = []
            for kind, letter in (("shift", "b"), ("scale", "s")):
                values = cells[config].get((position, kind), [])
                if values:
                    std = _std(values)
                    parts.append(f"{letter} {_mean(values):.3f}" +
                                 ("" if std is None else f" ± {std:.3f}"))
            texts.append(", ".join(parts) or "–")
        label = f"{'dropout' if config[1] else 'no dropout'}, {_lr_text(config[2])}"
        lines.append(f"| {label} | " + " | ".join(texts) + " |")
    return lines + [""]


def _section_failed(study: _Study) -> list[str]:
    """The failed runs with their error messages."""
    lines = [f"## Failed runs ({len(study.failed)})", ""]
    if not study.failed:
        return lines + ["None.", ""]
    for row in study.failed:
        error = " ".join(str(row.get("error") or "no error message").split())
        lines.append(f"- `{row.get('variant')}`, {row.get('arch')}, "
                     f"{'dropout' if row.get('dropout') else 'no dropout'}, lr "
                     f"{_lr_text(row.get('lr'))}, seed {row.get('seed')}, batch "
                     f"{row.get('batch_size')}: {error}")
    return lines + [""]


def _section_figures(study: _Study, figures: list[Path]) -> list[str]:
    """Links to the figures, and the runs whose curves could not be read."""
    lines = ["## Figures", ""]
    if not figures:
        lines.append("No figures (matplotlib is missing, or no run has curves): "
                     f"`{_plot.PLOT_EXTRA_HINT}`.")
    for path in figures:
        relative = path.relative_to(study.directory).as_posix()
        lines.append(f"- [{relative}]({relative})")
    if study.unreadable:
        lines.append(f"\n{len(study.unreadable)} ok run(s) had no readable curves.npz: "
                     + "; ".join(f"`{path}`" for path in sorted(study.unreadable)))
    return lines + [""]


def _summary(conclusions: dict) -> list[str]:
    """The four verdicts in one table."""
    names = {1: "layer-wise shift-and-scale is the best of the nine",
             2: "it trains faster than no change", 3: "it tends to overfit",
             4: "it does not beat batch norm, which cannot learn online"}
    lines = ["## Verdicts", "", "| conclusion | verdict |", "|---|---|"]
    lines += [f"| ({k}) {names[k]} | {conclusions[k]['verdict']} |" for k in sorted(names)]
    return lines + [""]


def _markdown(study: _Study, conclusions: dict, figures: list[Path], title: str) -> str:
    """The whole report.md text."""
    rules = (f"A claim is *supported* when it holds in ≥ {SUPPORTED_AT:.0%} of the pairs, "
             f"*not supported* at ≤ {NOT_SUPPORTED_AT:.0%}, *mixed* in between; every number "
             "below is computed from the runs.")
    lines = [f"# {title}", "", rules, ""]
    lines += _section_setup(study) + _summary(conclusions) + _section_tables(study)
    lines += _section_best(conclusions[1]) + _section_faster(conclusions[2])
    lines += _section_overfits(conclusions[3]) + _section_batchnorm(conclusions[4])
    lines += _section_learned(study) + _section_figures(study, figures)
    lines += _section_failed(study)
    return "\n".join(lines).rstrip() + "\n"


# -- entry point ----------------------------------------------------------------------------------


def write_report(directory, rows, *, title: str | None = None) -> dict:
    """Write results.csv, curves/*.png, learned.png and report.md for a shift/scale study.

    Args:
        directory: the folder to write into (created if needed); relative ``run_dir`` values
            are taken from it.
        rows: one dict per run (see the module docstring), ok and failed.
        title: the report's title (default "Shift and scale layers: study report").

    Returns:
        ``{"conclusions": {1: {"verdict": ..., ...}, 2: ..., 3: ..., 4: ...}, "runs": ok
        runs, "failed": failed runs, "files": [written paths]}``; each verdict is one of
        "supported", "not supported", "mixed" and "not tested in these runs".
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    study = _Study(directory, list(rows))
    conclusions = {1: _conclusion_best(study), 2: _conclusion_faster(study),
                   3: _conclusion_overfits(study), 4: _conclusion_batchnorm(study)}
    files = [_write_csv(study)]
    figures = _draw_figures(study)
    text = _markdown(study, conclusions, figures, title or "Shift and scale layers: study report")
    files += figures + [_atomic_write_text(directory / "report.md", text)]
    verdicts = {"conclusions": conclusions, "runs": len(study.ok), "failed": len(study.failed)}
    files.append(_atomic_write_text(directory / "verdicts.json", json.dumps(
        _plain(verdicts), indent=2) + "\n"))
    return {**verdicts, "files": files}


def _plain(value):
    """verdicts.json's values: tuple keys joined by "/", tuples as lists, NumPy numbers as
    Python numbers."""
    if isinstance(value, dict):
        return {"/".join(map(str, k)) if isinstance(k, tuple) else k: _plain(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = ["COLUMNS", "NOT_SUPPORTED_AT", "SUPPORTED_AT", "VARIANTS", "write_report"]
