"""Embedding: lookup, scatter-added gradients, parity with torch.nn.Embedding."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers import Embedding
from tests.layers.helpers import assert_torch_parity
from tests.torch_helpers import require_torch

torch = require_torch()


@pytest.mark.parametrize("ids", [np.array([[1, 2, 1], [0, 9, 1]]), np.array([4, 4, 4, 7])])
def test_embedding_matches_torch(float64, ids):
    module = torch.nn.Embedding(10, 4).double()
    layer = Embedding(10, 4)
    layer.set_weights([module.weight.detach().numpy()])
    assert_torch_parity(layer, module, ids, [(layer.embeddings, module.weight, None)])


def test_embedding_gradcheck(float64):
    layer = Embedding(6, 3)
    ids = cr.tensor([[0, 5, 5], [2, 0, 1]])
    assert cr.gradcheck(lambda table: layer(ids), [layer.embeddings])


def test_repeated_ids_accumulate_gradients(float64):
    layer = Embedding(5, 2)
    layer(cr.tensor([[3, 3, 1]])).sum().backward()
    np.testing.assert_array_equal(layer.embeddings.grad.numpy()[:, 0], [0, 1, 0, 2, 0])


def test_embedding_is_built_at_construction_with_keras_defaults():
    layer = Embedding(1000, 8)
    assert layer.built and layer.count_params() == 8000
    w = layer.embeddings.data
    assert w.dtype == np.float32 and np.abs(w).max() <= 0.05
    assert layer.compute_output_shape((None, 7)) == (None, 7, 8)
    with pytest.raises(ValueError, match="must be positive"):
        Embedding(0, 3)
