"""Models: Keras's high-level API on chainrule's layers.

* :class:`Sequential`: a stack of layers (``add``, ``pop``, ``layers``, indexing);
* :class:`Model`: subclass it to write any model (layers in ``__init__``, ``forward``/``call``),
  or ``Model(inputs, outputs)`` with ``inputs = Input(shape=...)``: Keras's functional API
  (:class:`Functional`, docs/compat.md);
* both have ``compile``, ``fit``, ``evaluate``, ``predict``, ``train_on_batch``,
  ``test_on_batch``, ``predict_on_batch``, ``summary``, ``save``, ``save_weights`` and
  ``load_weights``; :func:`load_model` reads a saved model back;
* :class:`Ensemble`: averages the class probabilities of several models (deep ensembles);
  ``Model.predict_mc`` gives Monte-Carlo dropout's mean and standard deviation;
* :class:`AveragedModel` and :func:`update_bn`: SWA and EMA weight averaging.

The lectures' Keras code runs with only the imports changed::

    from chainrule.models import Sequential
    from chainrule.layers import Dense

    model = Sequential()
    model.add(Dense(64, activation="relu", input_shape=(784,)))
    model.add(Dense(10, activation="softmax"))
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=5, batch_size=32)
    loss, accuracy = model.evaluate(x_test, y_test)
    probabilities = model.predict(x_test)

See docs/models.md.
"""

from chainrule.models.averaging import AveragedModel, update_bn
from chainrule.models.ensemble import Ensemble
from chainrule.models.functional import Functional, KerasTensor, SymbolicTensor
from chainrule.models.input_layer import InputLayer
from chainrule.models.model import Model
from chainrule.models.saving import load_model, save_model
from chainrule.models.sequential import Input, Sequential

__all__ = ["AveragedModel", "Ensemble", "Functional", "Input", "InputLayer", "KerasTensor",
           "Model", "Sequential", "SymbolicTensor", "load_model", "save_model", "update_bn"]
