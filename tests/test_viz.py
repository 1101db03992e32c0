"""viz: DOT pictures of recorded graphs and models; Tensor.retain_grad (against PyTorch)."""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest

import chainrule as cr
from chainrule import viz
from chainrule.layers import Dense
from chainrule.models import Sequential
from chainrule.ops.nn_recurrent import unstack
from tests.torch_helpers import require_torch

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")

LECTURE_DOT = """\
digraph chainrule {
  rankdir=LR;
  graph [fontname="Helvetica"];
  node [fontname="Helvetica", fontsize=11];
  edge [fontname="Helvetica", fontsize=9];
  t0 [shape=record, style=filled, fillcolor="#dbeafe", label="{x|data -2|grad -4}"];
  t1 [shape=record, style=filled, fillcolor="#dbeafe", label="{y|data 5|grad -4}"];
  t2 [shape=record, label="{q|data 3|grad -4}"];
  t3 [shape=record, style=filled, fillcolor="#dbeafe", label="{z|data -4|grad 3}"];
  t4 [shape=record, label="{f|data -12|grad 1}"];
  op0 [shape=ellipse, style=filled, fillcolor="#f3f4f6", label="Add"];
  op1 [shape=ellipse, style=filled, fillcolor="#f3f4f6", label="Mul"];
  t0 -> op0;
  t1 -> op0;
  op0 -> t2;
  t2 -> op1;
  t3 -> op1;
  op1 -> t4;
}
"""


def lecture_graph():
    """f = (x + y) * z at x = -2, y = 5, z = -4, after backward (q and f retain their grads)."""
    x = cr.tensor(-2.0, requires_grad=True)
    y = cr.tensor(5.0, requires_grad=True)
    z = cr.tensor(-4.0, requires_grad=True)
    q = x + y
    f = q * z
    q.retain_grad()
    f.retain_grad()
    f.backward(retain_graph=True)
    return f, {"x": x, "y": y, "z": z, "q": q, "f": f}


# -- the DOT text --------------------------------------------------------------------------------


def test_lecture_graph_golden_dot():
    f, names = lecture_graph()
    assert viz.to_dot(f, names=names) == LECTURE_DOT


def test_trace_before_backward_shows_the_gradients_after_it():
    x = cr.tensor(-2.0, requires_grad=True)
    y = cr.tensor(5.0, requires_grad=True)
    z = cr.tensor(-4.0, requires_grad=True)
    q = viz.label(x + y, "q")
    f = viz.label(q * z, "f")
    q.retain_grad()
    f.retain_grad()
    graph = viz.trace(f, names={"x": x, "y": y, "z": z})
    before = viz.to_dot(graph)
    assert "grad" not in before and "{q|data 3}" in before
    f.backward()  # frees the graph: the trace still holds its tensors
    assert viz.to_dot(graph) == LECTURE_DOT
    assert repr(graph) == "<Graph: 5 tensors, 2 ops>"


def test_the_docs_picture_is_what_the_code_draws():
    f, names = lecture_graph()
    assert (DOCS / "graph-lecture.dot").read_text() == viz.to_dot(f, names=names)
    assert (DOCS / "graph-lecture.svg").read_text().lstrip().startswith("<?xml")


def test_a_freed_graph_says_how_to_keep_it():
    x = cr.tensor(1.0, requires_grad=True)
    f = (x * 2).exp()
    f.backward()
    with pytest.raises(RuntimeError, match=r"Exp .*freed by backward.*viz\.trace.*retain_graph"):
        viz.to_dot(f)


def test_output_is_deterministic_and_values_are_shared_once():
    def build():
        x = cr.tensor(3.0, requires_grad=True)
        a = x * x  # one input used twice: two edges into one op
        return (a + a.exp()) * a, x

    first, x = build()
    text = viz.to_dot(first, names={"x": x})
    second, x2 = build()
    assert text == viz.to_dot(second, names={"x": x2})
    assert text.count("label=\"{x|") == 1
    assert text.count("t0 -> op0;") == 2
    assert text.count('label="Mul"') == 2 and text.count('label="Exp"') == 1
    assert text.count("[shape=record") == 5  # x, a, exp(a), a + exp(a), the product


def test_tensors_without_names_show_their_shape():
    x = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    text = viz.to_dot(x.sum() * 2)
    assert '"{(2, 2)|data [[1, 2], [3, 4]]}"' in text
    assert '"{scalar|data 10}"' in text and '"{scalar|data 2}"' in text  # 2: a constant
    assert '"{(3,)|data [1, 2, 3]}"' in viz.to_dot(cr.tensor([1.0, 2.0, 3.0]))


def test_names_from_pairs_labels_and_the_names_argument_first():
    layer = Dense(3)
    x = cr.tensor(np.ones((1, 3), dtype=np.float32))
    out = layer(x)
    text = viz.to_dot(out, names=layer.named_parameters())
    assert '{kernel|data (3, 3) float32}' in text and '{bias|data [0, 0, 0]}' in text
    viz.label(x, "input")
    assert "{input|" in viz.to_dot(out)
    assert "{batch|" in viz.to_dot(out, names={"batch": x})
    graph = viz.trace(out)
    assert "{batch|" in viz.to_dot(graph, names={"batch": x})


def test_value_formatting():
    def label_of(array, **kwargs):
        text = viz.to_dot(cr.tensor(array), **kwargs)
        return text.split('label="', 1)[1].split('"]', 1)[0]

    assert label_of(1.0 / 3.0) == "{scalar|data 0.3333}"
    assert label_of(-0.0) == "{scalar|data 0}"
    assert label_of(12345.678) == "{scalar|data 1.235e+04}"
    assert label_of(np.array(7, dtype=np.int64)) == "{scalar|data 7}"
    assert label_of(np.array([True, False])) == "{(2,)|data [True, False]}"
    assert label_of(np.arange(8.0).reshape(2, 4)) == "{(2, 4)|data [[0, 1, 2, 3], [4, 5, 6, 7]]}"
    assert label_of(np.float64(2.5), show_values=False) == "{scalar}"


def test_big_arrays_are_summarised_as_shape_and_dtype():
    x = cr.tensor(np.ones((3, 3), dtype=np.float32), requires_grad=True)
    y = x * 2
    y.sum().backward(retain_graph=True)
    text = viz.to_dot(y, names={"x": x})
    assert '"{x|data (3, 3) float32|grad (3, 3) float32}"' in text
    assert "grad" not in viz.to_dot(y, names={"x": x}, show_grads=False)
    assert viz.MAX_ELEMENTS == 8
    assert "data [1, 1, 1, 1, 1, 1, 1, 1]" in viz.to_dot(cr.tensor(np.ones(8)))
    assert "data (9,) float64" in viz.to_dot(cr.tensor(np.ones(9), dtype=np.float64))


def test_record_text_is_escaped():
    x = viz.label(cr.tensor(1.0), 'a {b} | <c> "d" \\')
    assert r'label="{a \{b\} \| \<c\> \"d\" \\|data 1}"' in viz.to_dot(x)


def test_rankdir_and_several_outputs():
    x = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    a, b, c = unstack(x, axis=1)
    text = viz.to_dot([a * 2, c], rankdir="TB")
    assert "rankdir=TB;" in text
    assert text.count('label="Unstack"') == 1
    assert "op0 -> t1;" in text and "op0 -> t4;" in text  # a, then c after a * 2
    with pytest.raises(ValueError, match="rankdir must be one of TB, LR, BT, RL"):
        viz.to_dot(x, rankdir="sideways")
    with pytest.raises(TypeError, match="expected a Tensor"):
        viz.trace(np.ones(2))


# -- rendering -----------------------------------------------------------------------------------


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG\r\n\x1a\n"),
                                           (".pdf", b"%PDF")])
def test_draw_renders_with_dot(tmp_path, suffix, magic):
    f, names = lecture_graph()
    path = tmp_path / ("lecture" + suffix)
    assert viz.draw(f, path, names=names) == str(path)
    assert path.read_bytes().startswith(magic)
    assert (tmp_path / "lecture.dot").read_text() == LECTURE_DOT
    if suffix == ".svg":
        svg = path.read_text()
        assert "<svg" in svg and "grad &#45;4" in svg and ">Mul<" in svg
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["lecture.dot", path.name])


def test_draw_without_dot_writes_the_dot_file_and_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    f, names = lecture_graph()
    with pytest.raises(viz.GraphvizNotFoundError) as caught:
        viz.draw(f, tmp_path / "f.svg", names=names)
    message = str(caught.value)
    assert "apt-get install graphviz" in message
    assert "pip package `graphviz` does not include `dot`" in message
    assert str(tmp_path / "f.dot") in message
    assert (tmp_path / "f.dot").read_text() == LECTURE_DOT
    assert not (tmp_path / "f.svg").exists()


def test_draw_dot_only_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    f, names = lecture_graph()
    viz.draw(viz.trace(f, names), tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text() == LECTURE_DOT
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf"):
        viz.draw(f, tmp_path / "g.bmp")
    with pytest.raises(TypeError, match="cannot draw a dict"):
        viz.draw({}, tmp_path / "g.dot")


@needs_dot
def test_draw_reports_a_dot_failure(tmp_path):
    with pytest.raises(RuntimeError, match="dot -Tsvg .* failed"):
        viz.draw("digraph { this is not DOT", tmp_path / "bad.svg")


# -- models --------------------------------------------------------------------------------------


def small_model():
    return Sequential([Dense(8, activation="relu", input_shape=(4,), name="hidden"),
                       Dense(3, name="scores")], name="tiny")


def test_model_to_dot_sequential_layers_in_order_with_shapes():
    text = viz.model_to_dot(small_model(), show_shapes=True)
    assert text.startswith("digraph model {\n  rankdir=TB;\n")
    assert ('  layer0 [shape=record, label="{hidden (Dense)|input (None, 4)|output (None, 8)}"];\n'
            in text)
    assert ('  layer1 [shape=record, label="{scores (Dense)|input (None, 8)|output (None, 3)}"];\n'
            in text)
    assert "  layer0 -> layer1;\n" in text and text.count("->") == 1


def test_model_to_dot_options():
    model = small_model()
    plain = viz.model_to_dot(model)
    assert '"{hidden (Dense)}"' in plain and "input (" not in plain
    text = viz.model_to_dot(model, show_layer_names=False, show_dtype=True, rankdir="LR",
                            show_layer_activations=True, show_trainable=True, dpi=96)
    assert '"{Dense|activation relu|dtype float32|trainable yes}"' in text
    assert "rankdir=LR;" in text and "dpi=96;" in text
    unbuilt = Sequential([Dense(2), Dense(1)])
    assert "input ?|output ?" in viz.model_to_dot(unbuilt, show_shapes=True)


def test_model_to_dot_expand_nested():
    inner = Sequential([Dense(5, name="a"), Dense(6, name="b")], name="block")
    model = Sequential([Dense(4, input_shape=(2,), name="first"), inner, Dense(1, name="last")])
    flat = viz.model_to_dot(model)
    assert "{block (Sequential)}" in flat and "cluster" not in flat
    nested = viz.model_to_dot(model, expand_nested=True, show_shapes=True)
    assert '  subgraph cluster_1 {\n    label="block (Sequential)";\n' in nested
    assert '{a (Dense)|input (None, 4)|output (None, 5)}' in nested
    assert [line.strip() for line in nested.splitlines() if "->" in line] == [
        "layer0 -> layer2;", "layer2 -> layer3;", "layer3 -> layer4;"]


@needs_dot
def test_plot_model_writes_a_png_and_its_dot(tmp_path):
    path = tmp_path / "model.png"
    assert viz.plot_model(small_model(), to_file=str(path), show_shapes=True) == str(path)
    assert path.read_bytes().startswith(b"\x89PNG")
    dot = (tmp_path / "model.dot").read_text()
    assert "dpi=200;" in dot and "output (None, 3)" in dot
    viz.plot_model(small_model(), to_file=tmp_path / "model.svg")
    assert "dpi" not in (tmp_path / "model.dot").read_text()  # vector formats need none
    viz.draw(small_model(), tmp_path / "m.svg", show_shapes=True)
    assert "scores (Dense)" in (tmp_path / "m.svg").read_text()


# -- Tensor.retain_grad --------------------------------------------------------------------------


def test_retain_grad_matches_torch():
    torch = require_torch()
    values = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    w_values = np.array([1.0, -2.0, 0.5])

    def run(lib, tensor, requires):
        x = tensor(values, requires_grad=requires)
        w = tensor(w_values, requires_grad=requires)
        h = x * w  # broadcast: h's gradient has x's shape, w's is summed
        h.retain_grad()
        s = (h * h).sum()
        s.retain_grad()
        s.backward(retain_graph=True)
        first = h.grad.numpy().copy()
        (h.sum() * 3).backward()  # accumulates, as a leaf's gradient does
        return first, h.grad.numpy(), s.grad.numpy(), x.grad.numpy(), w.grad.numpy()

    ours = run(cr, lambda v, requires_grad: cr.tensor(v, requires_grad=requires_grad), True)
    theirs = run(torch, lambda v, requires_grad: torch.tensor(v, requires_grad=requires_grad),
                 True)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b.detach().numpy() if hasattr(b, "detach") else b)


def test_retain_grad_with_grad_leaves_and_errors():
    torch = require_torch()
    x = cr.tensor(2.0, requires_grad=True)
    q = x * 3
    q.retain_grad()
    assert q.retains_grad and not x.retains_grad
    (dx,) = cr.grad(q * q, [x])  # PyTorch fills a retained .grad under autograd.grad too
    tx = torch.tensor(2.0, requires_grad=True)
    tq = tx * 3
    tq.retain_grad()
    torch.autograd.grad(tq * tq, [tx])
    assert q.grad.item() == tq.grad.item() == 12.0 and dx.item() == 36.0
    x.retain_grad()  # a leaf: nothing to do
    assert x.grad is None and not x.retains_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.tensor(1.0).retain_grad()


def test_retain_grad_on_one_output_of_a_multi_output_op():
    x = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    a, b, c = unstack(x, axis=1)
    a.retain_grad()
    b.retain_grad()
    (a * 5).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [5.0, 5.0])
    assert b.grad is None  # no gradient flowed into b
    np.testing.assert_array_equal(x.grad.numpy(), [[5, 0, 0], [5, 0, 0]])


def test_retained_grad_never_shares_an_array_with_a_leaf():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    q = x + 0.0  # Add hands its upstream gradient to x as is
    q.retain_grad()
    q.sum().backward()
    assert q.grad.data is not x.grad.data
    q.grad.data[0] = 100.0
    assert x.grad.numpy()[0] == 1.0
