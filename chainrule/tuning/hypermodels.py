"""The zoo's architectures as search targets: ``build_fn(hp)`` for ``chainrule tune``.

:class:`ZooHyperModel` builds and compiles a :mod:`chainrule.zoo` model from a dict of
hyper-parameters; it is a module-level class, so worker processes can unpickle it. The names it
knows, per architecture (:data:`HYPERPARAMETERS`):

=============  =============================================================================
``lr``         the optimizer's learning rate (default: the optimizer's own)
``optimizer``  an optimizer name: adam, sgd, rmsprop, ... (default adam)
``momentum``   the optimizer's momentum (optimizers that have one: sgd, rmsprop)
``units``      mlp: the first hidden layer's width; each next layer has half as many units
               (the zoo's 256-128 shape; default 256)
``layers``     mlp: the number of hidden layers (default 2)
``dropout``    cnn: the dropout rate before the last layer (default 0.25)
=============  =============================================================================
"""

from __future__ import annotations

from chainrule import optimizers, zoo

COMMON = ("lr", "optimizer", "momentum")

#: The hyper-parameters each architecture takes, beyond :data:`COMMON`.
HYPERPARAMETERS = {"mlp": ("units", "layers"), "cnn": ("dropout",), "lenet": ()}


def known_names(model: str) -> tuple:
    """Every hyper-parameter name ``model`` takes."""
    return COMMON + HYPERPARAMETERS[model]


class ZooHyperModel:
    """``build_fn(hp)`` of a zoo architecture: the model for ``hp``, compiled for
    classification (:func:`chainrule.zoo.compile_for_classification`)."""

    def __init__(self, model: str, input_shape, num_classes: int):
        if model not in HYPERPARAMETERS:
            raise ValueError(f"unknown model {model!r}; choose one of {sorted(HYPERPARAMETERS)}")
        self.model, self.input_shape, self.num_classes = model, tuple(input_shape), num_classes

    def check_names(self, names) -> None:
        """Refuse hyper-parameter names the architecture does not take, naming the known ones."""
        unknown = sorted(set(names) - set(known_names(self.model)))
        if unknown:
            raise ValueError(f"--param: {self.model} takes no hyper-parameter "
                             f"{', '.join(map(repr, unknown))}; it takes "
                             f"{', '.join(known_names(self.model))}")

    def __call__(self, hp: dict):
        self.check_names(hp)
        model = zoo.build(self.model, self.input_shape, self.num_classes,
                          **self._architecture(hp))
        return zoo.compile_for_classification(model, self._optimizer(hp))

    @staticmethod
    def _optimizer(hp: dict):
        """The optimizer named by ``hp["optimizer"]`` (default adam) with the given rate and
        momentum; an optimizer without momentum refuses one, naming itself."""
        name = hp.get("optimizer", "adam")
        config = {"learning_rate": float(hp["lr"])} if "lr" in hp else {}
        if "momentum" in hp:
            config["momentum"] = float(hp["momentum"])
        try:
            return optimizers.get({"class_name": name, "config": config})
        except TypeError as error:
            raise ValueError(f"optimizer {name!r} does not take {sorted(config)}: "
                             f"{error}") from None

    def _architecture(self, hp: dict) -> dict:
        if self.model == "mlp":
            units, layers = int(hp.get("units", 256)), int(hp.get("layers", 2))
            if units < 1 or layers < 1:
                raise ValueError(f"units and layers must be >= 1, got units={units}, "
                                 f"layers={layers}")
            return {"hidden": tuple(max(1, units >> k) for k in range(layers))}
        if self.model == "cnn" and "dropout" in hp:
            return {"dropout": float(hp["dropout"])}
        return {}

    def __repr__(self) -> str:
        return f"ZooHyperModel({self.model!r}, {self.input_shape}, {self.num_classes})"
