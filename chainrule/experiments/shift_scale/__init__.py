"""The thesis's shift/scale study: learned shift (y = x + b) and scale (y = s·x) layers, per
element, channel or layer, after the input and every hidden activation, against no change and
batch normalisation (``chainrule study shift-scale``; ``docs/study-shift-scale.md``).

* :mod:`.models`: :data:`VARIANTS`, :func:`build_model` (the MLP and the All-CNN-C net);
* :mod:`.training`: :func:`run`, one seeded run that writes its folder and returns metrics;
* :mod:`.study`: the grid on :class:`chainrule.experiments.Study`, the quick profile;
* :mod:`.report`: results.csv, the curves, learned.png and report.md, computed from the runs.
"""

from chainrule.experiments.shift_scale.models import ARCHS, VARIANTS, added_layers, build_model
from chainrule.experiments.shift_scale.study import (
    DEFAULTS,
    LEARNING_RATES,
    QUICK,
    make_study,
    run_study,
)
from chainrule.experiments.shift_scale.training import run

__all__ = ["ARCHS", "DEFAULTS", "LEARNING_RATES", "QUICK", "VARIANTS", "added_layers",
           "build_model", "make_study", "run", "run_study"]
