"""Static graphs: TensorFlow 1's two phases, build then run, over chainrule's own ops.

Define-by-run (the rest of chainrule) computes as it goes and records what it did for one
backward. Here the program is built once and run many times::

    import chainrule as cr
    import chainrule.graph as tf

    with tf.Graph() as g:                                  # build: nothing is computed for real
        x = tf.placeholder((None, 4))                      # fed at every run; None: any batch
        W = tf.Variable(np.zeros((4, 3)), name="W")        # lives across runs
        loss = cr.mean((cr.matmul(x, W) - 1.0) ** 2)       # any chainrule op or layer
        (dW,) = tf.gradients(loss, [W])                    # symbolic: a graph node too
        train = tf.assign(W, W - 0.1 * dW)                 # the update, as a node
    with tf.Session(g) as sess:                            # run: arrays in, arrays out
        for xb in batches:
            sess.run(train, feed_dict={x: xb})

**Build.** Inside ``with g:`` every op applied to a value of the graph (a placeholder, a
Variable, a layer weight, or a result of such an op) is recorded: :mod:`chainrule.graph.trace`
receives each ``Function`` call from the engine's one hook. The ops really run, once, on
stand-in arrays (a placeholder holds 0.5s of its shape, a free axis of length 2), so a shape
mismatch is an error at build time naming the op and the shapes, as in define-by-run.
Outside any ``with``, ``placeholder`` and ``Variable`` build on the default graph
(:func:`get_default_graph`; TensorFlow 1's snippets need no ``with``), which records until a
:class:`Session` is made on it.

**Run.** ``Session.run(fetches, feed_dict)`` replays, in order, only the recorded nodes the
fetches need (pruning: a placeholder they do not need need not be fed), each one as its
Function's ``forward`` on arrays (fed placeholders, the Variables' current values, earlier
results): no Tensor is made and nothing is recorded. A placeholder fed the wrong shape (None
axes aside), a missing feed (naming the placeholder the fetch needs) and a fetch that is not
in the graph are errors before anything runs.

**Gradients** (:func:`gradients`) are one node whose run applies the chain rule over the
recorded ops between the xs and the ys: it links thin Tensors around that run's arrays to the
recorded Functions and calls the engine's backward, so each op's own backward (ReLU masks,
Dense's fused linear, softmax cross-entropy) gives exactly define-by-run's numbers, for any
batch size. Gradients of gradients are not supported in a graph (a clear error).

**Variables and assign.** A Variable is a leaf Tensor that requires a gradient; a layer's
weights work the same way. ``assign(v, value)`` is a node that writes ``value`` into ``v``
and gives the new value. A run reads every Variable once, when it starts, so all its nodes
see the values from before its assigns.

**What a graph cannot see.** The build runs Python once: an ``if`` on a tensor's value keeps
the branch taken at build time; ``.item()``, ``.numpy()``, ``x.shape[0]`` are constants.
Functions that are not ops compute constants too: ``argmax`` (compute accuracy from fetched
logits), ``one_hot`` and anything done with ``.data`` or NumPy. Comparisons, ``where``'s
condition, a cross-entropy's integer labels and an embedding's ids are ops or op inputs, and
dropout draws its mask (batch norm updates its statistics) inside its op, so every run reads
and draws its own, as in TensorFlow. The build warns about a constant whose first axis has
the stand-in batch length; a reshape to ``(x.shape[0], -1)`` (``Flatten``) is recognised and
follows the fed batch.
"""

from chainrule.graph.graph import (
    STAND_IN,
    Graph,
    Operation,
    Variable,
    assign,
    get_default_graph,
    global_variables_initializer,
    gradients,
    placeholder,
    reset_default_graph,
)
from chainrule.graph.session import Session
from chainrule.graph.trace import Trace

__all__ = [
    "STAND_IN", "Graph", "Operation", "Session", "Trace", "Variable", "assign",
    "get_default_graph", "global_variables_initializer", "gradients", "placeholder",
    "reset_default_graph",
]
