"""Layer.load_state_dict is all or nothing: every value is checked before any weight changes."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.layers import Dense, Layer
from chainrule.models import Sequential


def _six_weights():
    """A model with six weights (three Dense layers, kernel and bias each), and a state that
    fits it with values different from its own."""
    model = Sequential([Dense(4, input_shape=(3,)), Dense(5), Dense(2)])
    state = {name: np.full(array.shape, 0.5, array.dtype)
             for name, array in model.state_dict().items()}
    assert len(state) == 6
    return model, state


BAD_VALUES = {
    "object array of None": lambda shape: np.array([None] * int(np.prod(shape)), dtype=object),
    "None": lambda shape: None,
    "strings": lambda shape: np.full(shape, "0.5"),
    "complex": lambda shape: np.full(shape, 1 + 2j),
    "ragged list": lambda shape: [[1.0], [1.0, 2.0]],
    "NaN": lambda shape: np.full(shape, np.nan),
    "infinity": lambda shape: np.where(np.arange(np.prod(shape)).reshape(shape) == 1, np.inf, 0),
    "too large for float32": lambda shape: np.full(shape, 1e300),
    "wrong shape": lambda shape: np.zeros((*shape, 2)),
}


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_a_bad_sixth_tensor_leaves_all_six_weights_untouched(kind):
    model, state = _six_weights()
    before = model.state_dict()
    last = list(state)[-1]
    state[last] = BAD_VALUES[kind](before[last].shape)
    with pytest.raises(ValueError, match=f"load_state_dict into layer '{model.name}'"):
        model.load_state_dict(state)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name], err_msg=f"{name} was changed")


def test_the_error_names_the_weight_and_what_is_wrong():
    model, state = _six_weights()
    last = list(state)[-1]
    state[last] = np.array([None, None], dtype=object)
    with pytest.raises(ValueError, match=rf"weight '{last}': got a object array"):
        model.load_state_dict(state)
    state[last] = np.array([np.nan, 1.0])
    with pytest.raises(ValueError, match=rf"weight '{last}': 1 of 2 values are NaN or infinite"):
        model.load_state_dict(state)


def test_every_problem_is_reported_at_once():
    model, state = _six_weights()
    names = list(state)
    state[names[0]] = np.full(state[names[0]].shape, np.nan)
    state[names[5]] = np.zeros(7)
    with pytest.raises(ValueError) as caught:
        model.load_state_dict(state)
    message = str(caught.value)
    assert f"'{names[5]}': expected (2,), got (7,)" in message and names[0] in message


def test_non_finite_values_load_when_allowed():
    model, state = _six_weights()
    last = list(state)[-1]
    state[last] = np.array([np.nan, np.inf])
    model.load_state_dict(state, allow_nonfinite=True)
    assert np.isnan(model.state_dict()[last][0]) and np.isinf(model.state_dict()[last][1])


def test_good_values_still_load_cast_to_each_weight_dtype():
    model, state = _six_weights()
    state = {name: value.astype(np.float64).tolist() if i % 2 else value.astype(np.int64)
             for i, (name, value) in enumerate(state.items())}
    model.load_state_dict(state)
    for name, array in model.state_dict().items():
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, np.asarray(state[name], np.float32))


class _Counter(Layer):
    """A layer with an integer weight."""

    def build(self, input_shape):
        self.add_weight("count", (2,), initializer="zeros", trainable=False, dtype=np.int64)

    def forward(self, x):
        return x


def test_floats_are_refused_for_an_integer_weight():
    layer = _Counter(input_shape=(1,))
    with pytest.raises(ValueError, match=r"cannot cast a float64 array to the weight's int64"):
        layer.load_state_dict({"count": np.array([1.5, 2.0])})
    layer.load_state_dict({"count": np.array([3, 4], np.int32)})
    np.testing.assert_array_equal(layer.state_dict()["count"], [3, 4])
