"""``model.compile(..., jit=True)``: ``fit``, ``evaluate`` and ``predict`` run traced steps.

Each of the model's three steps has its forward pass (and loss) traced by
:func:`chainrule.jit` once per batch shape and training mode, and replayed for every other
batch of that shape. What stays eager is what ``train_step`` does around the forward pass:
reading the loss, the finite check, the layers' regularization, ``backward`` (the engine's, over
the replayed ops, which a replay links back into a graph) and the optimizer's update. So the
numbers are define-by-run's: the same losses and weights after any number of steps, dropout
masks and batch-norm statistics included (``tests/models/test_model_jit.py``).
"""

from __future__ import annotations

from chainrule.graph.jit import jit


class TracedSteps:
    """The traced forward passes of one model (made on first use; a copy of the model makes
    its own, so copies never share traces)."""

    def __init__(self, model):
        self.forward_loss = jit(model.forward_loss)
        self.forward = jit(model.__call__)

    def __deepcopy__(self, memo):
        return None  # the copy's steps are traced afresh, on the copy's weights

    def cache_info(self) -> dict:
        return {"train/test": self.forward_loss.cache_info(),
                "predict": self.forward.cache_info()}
