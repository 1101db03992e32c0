"""Static graphs: build with placeholders and Variables, run with a Session (TensorFlow 1)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.graph as tf
from chainrule import functional as F
from chainrule import layers, models


@pytest.fixture(autouse=True)
def _fresh_default_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


def test_lecture_snippet_runs_on_the_default_graph():
    input1 = tf.placeholder((1,), "float32")
    input2 = tf.placeholder((1,), "float32")
    output = input1 * input2
    with tf.Session() as sess:
        result = sess.run([output], feed_dict={input1: [7.0], input2: [2.0]})
    assert isinstance(result, list) and len(result) == 1
    np.testing.assert_array_equal(result[0], np.array([14.0], dtype=np.float32))
    assert result[0].dtype == np.float32


def test_default_graph_stops_recording_when_a_session_is_made():
    from chainrule.autograd.function import current_recorder

    a = tf.placeholder((2,))
    assert current_recorder() is tf.get_default_graph().trace
    b = a + 1
    tf.Session()
    assert current_recorder() is None
    later = b * 2  # not recorded: the build phase is over
    assert later not in tf.get_default_graph()
    with pytest.raises(ValueError, match="not an element of this graph"):
        tf.Session().run(later, feed_dict={a: [1.0, 2.0]})


def test_with_graph_and_tensorflow_argument_order():
    with tf.Graph() as g:
        x = tf.placeholder(np.float32, [None, 3], name="x")
        y = cr.exp(x).sum(axis=1)
    assert tf.get_default_graph() is not g
    with tf.Session(g) as sess:
        out = sess.run(y, feed_dict={x: np.zeros((4, 3))})
    np.testing.assert_allclose(out, np.full(4, 3.0, np.float32))


def test_fetch_structures_list_tuple_dict_and_operation():
    with tf.Graph() as g:
        a = tf.placeholder(())
        b, c = a + 1, a * 3
        init = tf.global_variables_initializer()
    sess = tf.Session(g)
    out = sess.run({"b": b, "pair": (c, [b]), "init": init}, feed_dict={a: 2.0})
    assert out["b"] == 3.0 and out["pair"][0] == 6.0 and out["pair"][1][0] == 3.0
    assert isinstance(out["pair"], tuple) and isinstance(out["pair"][1], list)
    assert out["init"] is None


# -- shapes, pruning and errors ----------------------------------------------------------------


def test_none_batch_axis_accepts_any_batch_size():
    with tf.Graph() as g:
        x = tf.placeholder((None, 3))
        W = tf.Variable(np.arange(6.0).reshape(3, 2))
        y = cr.matmul(x, W).mean(axis=0)
        (dW,) = tf.gradients(cr.sum(y * y), [W])
    sess = tf.Session(g)
    for n in (1, 5, 32):
        xs = np.random.default_rng(n).normal(size=(n, 3)).astype(np.float32)
        got_y, got_dW = sess.run([y, dW], feed_dict={x: xs})
        assert got_y.shape == (2,) and got_dW.shape == (3, 2)
        W_ = cr.tensor(W.data, requires_grad=True)
        y_ = cr.matmul(cr.tensor(xs), W_).mean(axis=0)
        cr.sum(y_ * y_).backward()
        np.testing.assert_array_equal(got_y, y_.data)
        np.testing.assert_array_equal(got_dW, W_.grad.data)


def test_pruning_a_fetch_that_does_not_need_a_placeholder_needs_no_feed():
    with tf.Graph() as g:
        a = tf.placeholder((2,), name="a")
        b = tf.placeholder((2,), name="b")
        only_a = a * 2
        both = only_a + b
    sess = tf.Session(g)
    np.testing.assert_array_equal(sess.run(only_a, feed_dict={a: [1.0, 2.0]}), [2.0, 4.0])
    with pytest.raises(ValueError, match="needs placeholder 'b'"):
        sess.run(both, feed_dict={a: [1.0, 2.0]})


def test_placeholder_fed_the_wrong_shape_names_it_and_both_shapes():
    with tf.Graph() as g:
        x = tf.placeholder((None, 4), name="images")
        y = x * 2
    sess = tf.Session(g)
    sess.run(y, feed_dict={x: np.zeros((7, 4))})  # any batch size
    with pytest.raises(ValueError, match=r"'images' has shape \(None, 4\); fed an array of "
                                         r"shape \(7, 5\)"):
        sess.run(y, feed_dict={x: np.zeros((7, 5))})
    with pytest.raises(ValueError, match=r"'images' has shape \(None, 4\).*\(4,\)"):
        sess.run(y, feed_dict={x: np.zeros(4)})
    with pytest.raises(TypeError, match="'images' has dtype float32"):
        sess.run(y, feed_dict={x: np.zeros((7, 4), dtype=complex)})


def test_missing_feed_names_the_placeholder_the_fetch_needs():
    with tf.Graph() as g:
        x = tf.placeholder((None, 4), name="images")
        y = cr.relu(x)
    with pytest.raises(ValueError, match=r"needs placeholder 'images' \(shape \(None, 4\), "
                                         r"float32\); feed it"):
        tf.Session(g).run(y)


def test_fetch_not_in_the_graph_is_an_error():
    outside = cr.tensor([1.0, 2.0])
    with tf.Graph() as g:
        x = tf.placeholder((2,))
        y = x + 1
    with tf.Graph() as other:
        z = tf.placeholder((2,)) * 2
    sess = tf.Session(g)
    for fetch in (outside, z):
        with pytest.raises(ValueError, match=r"fetch 1 \(a tensor of shape \(2,\)\) is not an "
                                             "element of this graph"):
            sess.run([y, fetch], feed_dict={x: [0.0, 0.0]})
    with pytest.raises(TypeError, match="cannot fetch a str"):
        sess.run("y")
    assert z in other


def test_build_time_errors_name_the_op_and_the_shapes():
    with tf.Graph():
        x = tf.placeholder((None, 3))
        W = tf.Variable(np.zeros((4, 2)))
        with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
            cr.matmul(x, W)


def test_run_time_error_names_the_node_and_its_input_shapes():
    with tf.Graph() as g:
        a = tf.placeholder((None, 3))
        b = tf.placeholder((None, 3))
        c = a + b
    with pytest.raises(RuntimeError, match=r"Add failed on inputs of shapes \(4, 3\), \(5, 3\)"):
        tf.Session(g).run(c, feed_dict={a: np.zeros((4, 3)), b: np.zeros((5, 3))})


def test_closed_session_refuses_to_run():
    with tf.Graph() as g:
        a = tf.placeholder(())
    sess = tf.Session(g)
    sess.close()
    with pytest.raises(RuntimeError, match="closed"):
        sess.run(a, feed_dict={a: 1.0})


# -- gradients -----------------------------------------------------------------------------


def test_gradients_match_chainrule_grad(float64):
    rng = np.random.default_rng(0)
    xs, ws, bs = rng.normal(size=(5, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)
    with tf.Graph() as g:
        x = tf.placeholder((None, 3), dtype="float64")
        w = tf.Variable(ws)
        b = tf.Variable(bs)
        h = cr.tanh(cr.matmul(x, w) + b)
        y = cr.sum(cr.exp(h) * x) / 3 + cr.maximum(h, 0.1).mean()
        gx, gw, gb = tf.gradients(y, [x, w, b])
    got = tf.Session(g).run([y, gx, gw, gb], feed_dict={x: xs})

    x_, w_, b_ = (cr.tensor(v, requires_grad=True) for v in (xs, ws, bs))
    h_ = cr.tanh(cr.matmul(x_, w_) + b_)
    y_ = cr.sum(cr.exp(h_) * x_) / 3 + cr.maximum(h_, 0.1).mean()
    expected = [y_.data] + [t.data for t in cr.grad(y_, [x_, w_, b_])]
    for a, e in zip(got, expected):
        np.testing.assert_allclose(a, e, rtol=1e-12)


def test_gradients_of_a_non_scalar_sum_it_and_grad_ys_weights_it():
    with tf.Graph() as g:
        x = tf.placeholder((3,))
        y = x * x
        (plain,) = tf.gradients(y, x)
        (weighted,) = tf.gradients([y], [x], grad_ys=[np.array([1.0, 0.0, 2.0])])
    sess = tf.Session(g)
    out = sess.run([plain, weighted], feed_dict={x: [1.0, 2.0, 3.0]})
    np.testing.assert_array_equal(out[0], [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(out[1], [2.0, 0.0, 12.0])


def test_unconnected_gradient_is_none_and_second_order_is_refused():
    with tf.Graph():
        x = tf.placeholder((2,))
        v = tf.Variable([1.0, 2.0])
        unused = tf.Variable([0.0])
        y = cr.sum(x * v)
        dv, du = tf.gradients(y, [v, unused])
        assert du is None and dv is not None
        with pytest.raises(NotImplementedError, match="gradients of gradients"):
            tf.gradients(cr.sum(dv * dv), [x])


def test_gradients_through_relu_use_each_runs_mask():
    with tf.Graph() as g:
        x = tf.placeholder((None,))
        (dx,) = tf.gradients(cr.sum(cr.relu(x) * 3), [x])
    sess = tf.Session(g)
    np.testing.assert_array_equal(sess.run(dx, {x: [-1.0, 2.0, 0.5]}), [0.0, 3.0, 3.0])
    np.testing.assert_array_equal(sess.run(dx, {x: [4.0, -2.0]}), [3.0, 0.0])


# -- assign --------------------------------------------------------------------------------


def test_assign_writes_the_variable_and_returns_the_new_value():
    with tf.Graph() as g:
        v = tf.Variable([1.0, 2.0], name="v")
        step = tf.placeholder(())
        double = tf.assign(v, v * 2)
        add = tf.assign(v, v + step)
        read = v * 1
        init = tf.global_variables_initializer()
    sess = tf.Session(g)
    np.testing.assert_array_equal(sess.run(double), [2.0, 4.0])
    np.testing.assert_array_equal(v.data, [2.0, 4.0])
    # one run reads the variable once, at its start: read sees the value before the assign
    new, before = sess.run([add, read], feed_dict={step: 1.0})
    np.testing.assert_array_equal(new, [3.0, 5.0])
    np.testing.assert_array_equal(before, [2.0, 4.0])
    fetched = sess.run(v)
    fetched[0] = 100.0  # a copy: the variable is not changed through it
    np.testing.assert_array_equal(sess.run(v), [3.0, 5.0])
    sess.run(init)
    np.testing.assert_array_equal(v.data, [1.0, 2.0])


def test_assign_checks_target_and_shape():
    with tf.Graph():
        v = tf.Variable(np.zeros((2, 2)), name="W")
        x = tf.placeholder((2, 2))
        with pytest.raises(ValueError, match=r"assign to W of shape \(2, 2\): the value has "
                                             r"shape \(3,\)"):
            tf.assign(v, np.zeros(3))
        with pytest.raises(TypeError, match="must be a Variable"):
            tf.assign(x, x * 2)


# -- layers and a full training loop --------------------------------------------------------


def test_dense_layer_inside_a_graph_trains_its_own_weights():
    cr.manual_seed(1)
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(16, 5)).astype(np.float32)
    targets = rng.normal(size=(16, 2)).astype(np.float32)
    dense = layers.Dense(2)
    with tf.Graph() as g:
        x = tf.placeholder((None, 5))
        t = tf.placeholder((None, 2))
        out = dense(x)
        loss = cr.mean((out - t) ** 2)
        params = dense.parameters()
        grads = tf.gradients(loss, params)
        train = [tf.assign(p, p - 0.1 * d) for p, d in zip(params, grads)]
    sess = tf.Session(g)
    np.testing.assert_array_equal(sess.run(out, {x: xs}), dense(cr.tensor(xs)).data)
    first = sess.run(loss, {x: xs, t: targets})
    for _ in range(20):
        sess.run(train, {x: xs, t: targets})
    assert sess.run(loss, {x: xs, t: targets}) < 0.5 * first
    # the layer's kernel is the graph's variable: define-by-run sees the trained weights
    np.testing.assert_array_equal(sess.run(out, {x: xs}), dense(cr.tensor(xs)).data)


def _blobs(n=150, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    centres = np.array([[2.0, 0.0, 0.0, 1.0], [-2.0, 1.0, 0.0, 0.0], [0.0, -2.0, 2.0, 0.0]])
    x = (centres[labels] + rng.normal(scale=1.0, size=(n, 4))).astype(np.float32)
    return x, labels, np.eye(3, dtype=np.float32)[labels]


def test_mlp_training_loop_matches_define_by_run():
    x_all, labels, onehot = _blobs()
    rng = np.random.default_rng(42)
    init = [rng.normal(scale=0.5, size=(4, 16)), np.zeros(16), rng.normal(scale=0.5,
            size=(16, 3)), np.zeros(3)]
    init = [a.astype(np.float32) for a in init]
    lr, batch, epochs = 0.1, 32, 15  # 150 samples: the last batch of each epoch has 22

    # TensorFlow 1 style
    with tf.Graph() as g:
        x = tf.placeholder((None, 4), name="x")
        y = tf.placeholder((None, 3), name="y")
        W1, b1, W2, b2 = (tf.Variable(a, name=n) for a, n in zip(init, ["W1", "b1", "W2", "b2"]))
        logits = cr.matmul(cr.relu(cr.matmul(x, W1) + b1), W2) + b2
        loss = F.softmax_cross_entropy(logits, y)
        variables = [W1, b1, W2, b2]
        grads = tf.gradients(loss, variables)
        updates = [tf.assign(v, v - lr * d) for v, d in zip(variables, grads)]
        init_op = tf.global_variables_initializer()
    losses, accuracies = [], []
    with tf.Session(g) as sess:
        sess.run(init_op)
        for _ in range(epochs):
            for i in range(0, len(x_all), batch):
                sess.run(updates, feed_dict={x: x_all[i:i + batch], y: onehot[i:i + batch]})
            value, out = sess.run([loss, logits], feed_dict={x: x_all, y: onehot})
            losses.append(float(value))
            accuracies.append(float(np.mean(out.argmax(axis=1) == labels)))
    assert losses[-1] < 0.5 * losses[0]
    assert accuracies[-1] > accuracies[0] and accuracies[-1] > 0.9

    # the same loop, define-by-run
    params = [cr.tensor(a, requires_grad=True) for a in init]
    for _ in range(epochs):
        for i in range(0, len(x_all), batch):
            w1, c1, w2, c2 = params
            xb, yb = cr.tensor(x_all[i:i + batch]), cr.tensor(onehot[i:i + batch])
            out = cr.matmul(cr.relu(cr.matmul(xb, w1) + c1), w2) + c2
            F.softmax_cross_entropy(out, yb).backward()
            with cr.no_grad():
                for p in params:
                    p.data = (p - lr * p.grad).data
                    p.grad = None
    for v, p in zip(variables, params):
        np.testing.assert_array_equal(v.data, p.data)


@pytest.mark.filterwarnings("ignore:Mul. an input of shape")
def test_a_fed_placeholder_that_no_op_reads_warns():
    with tf.Graph() as g:
        logits = tf.placeholder((None, 3))
        labels = tf.placeholder((None,), "int64", name="labels")
        # one_hot reads the labels in Python (it is not an op): the graph keeps the stand-ins
        loss = (F.one_hot(labels, 3) * logits).sum()
    with pytest.warns(UserWarning, match="'labels' is fed, but no op of the graph reads it"):
        tf.Session(g).run(loss, {logits: np.zeros((2, 3)), labels: [1, 2]})


def test_integer_labels_and_ids_are_inputs_of_their_ops():
    """Sparse cross-entropy and embedding take the labels / ids as inputs, so a graph reads
    the fed ones (they used to be constants of the graph, kept from the stand-ins)."""
    with tf.Graph() as g:
        logits = tf.placeholder((None, 3))
        labels = tf.placeholder((None,), "int64")
        ids = tf.placeholder((None,), "int64")
        table = tf.Variable(np.arange(12.0).reshape(4, 3))
        loss = F.softmax_cross_entropy(logits, labels, reduction="none")
        rows = F.embedding(ids, table)
        init = tf.global_variables_initializer()
    fed_logits = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))
    with tf.Session(g) as sess:
        sess.run(init)
        got_loss, got_rows = sess.run([loss, rows], {logits: fed_logits, labels: [2, 0],
                                                     ids: [3, 1]})
    np.testing.assert_allclose(got_loss, -np.log([0.5, 0.6]), rtol=1e-6)
    np.testing.assert_array_equal(got_rows, [[9, 10, 11], [3, 4, 5]])


def test_the_build_run_examples_of_the_docs_run(capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "graph.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    exec(blocks[0], {})
    assert capsys.readouterr().out == "[array([14.], dtype=float32)]\n"
    exec(blocks[1], {})
    loss, accuracy = re.match(r"loss (\S+), accuracy (\S+)", capsys.readouterr().out).groups()
    assert float(loss) < 0.5 and float(accuracy) > 0.85


def test_session_doctest_passes():
    import doctest

    from chainrule.graph import session

    result = doctest.testmod(session)
    assert result.attempted > 0 and result.failed == 0


def test_a_cnn_with_flatten_takes_any_batch_size():
    cr.manual_seed(0)
    model = models.Sequential([layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(2),
                               layers.Flatten(), layers.Dense(3)])
    with tf.Graph() as g:
        x = tf.placeholder((None, 1, 8, 8))
        out = model(x)  # Flatten reshapes to (batch, -1): it follows the fed batch
        grads = tf.gradients(cr.mean(out ** 2), model.parameters())
    sess = tf.Session(g)
    for n in (3, 1, 5):
        xs = np.random.default_rng(n).normal(size=(n, 1, 8, 8)).astype(np.float32)
        got, *got_grads = sess.run([out] + grads, {x: xs})
        for p in model.parameters():
            p.grad = None
        expected = model(cr.tensor(xs))
        cr.mean(expected ** 2).backward()
        np.testing.assert_array_equal(got, expected.data)
        for a, p in zip(got_grads, model.parameters()):
            np.testing.assert_array_equal(a, p.grad.data)


def test_a_constant_of_the_batch_stand_in_length_warns():
    with tf.Graph() as g:
        x = tf.placeholder((None, 4))
        mask = cr.Tensor(np.ones(x.shape, np.float32))  # made in Python, from the stand-in
        with pytest.warns(UserWarning, match=r"Mul: an input of shape \(2, 4\) is a constant"):
            y = x * mask
    with pytest.raises(RuntimeError, match=r"Mul failed on inputs of shapes \(5, 4\), \(2, 4\)"):
        tf.Session(g).run(y, {x: np.ones((5, 4))})


def test_dropout_draws_a_new_mask_for_the_fed_batch_on_every_run():
    """Dropout is an op that draws its mask in forward: a session run draws one for the fed
    batch, a fresh one each run."""
    with tf.Graph() as g:
        x = tf.placeholder((None, 200))
        y = layers.Dropout(0.5)(x, training=True)
    with tf.Session(g) as sess:
        first = sess.run(y, {x: np.ones((5, 200))})
        second = sess.run(y, {x: np.ones((5, 200))})
    assert first.shape == (5, 200)
    assert set(np.unique(first)) == {0.0, 2.0}
    assert (first != second).any()

