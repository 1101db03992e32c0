"""Experiments: studies made of seeded runs, on Optuna (the ``[tune]`` extra).

* :mod:`chainrule.experiments.runner`: :class:`Study`, the runner that every study uses: a grid
  or a sampler's draws, worker processes, a storage shared across machines, faults and resume.
* :mod:`chainrule.experiments.shift_scale`: the thesis's shift/scale study
  (``chainrule study shift-scale``).

The runner knows nothing of models: a run is a plain function ``run(spec, directory) ->
metrics``; it may :func:`report` a value per epoch to the study's pruner and stop with
:class:`RunPruned`. Studies know models, not the command line.
"""

from chainrule.experiments.runner import (
    RunPruned,
    Study,
    import_optuna,
    reclaim_interrupted,
    report,
)

__all__ = ["RunPruned", "Study", "import_optuna", "reclaim_interrupted", "report"]
