"""``model.summary()``: Keras's table of layers, output shapes and parameter counts."""

from __future__ import annotations


def _format_size(n_bytes: int) -> str:
    """Keras's sizes: ``0.00 Byte``, ``198.79 KB``, ``1.61 MB``."""
    if n_bytes < 1024:
        return f"{n_bytes:.2f} Byte"
    for unit in ("KB", "MB", "GB"):
        n_bytes /= 1024
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.2f} {unit}"
    raise AssertionError("unreachable")


def _shape_text(layer) -> str:
    try:
        shape = layer.output_shape
    except (AttributeError, NotImplementedError, ValueError, TypeError):
        return "?"
    return str(tuple(shape)) if shape is not None else "?"


def _params_text(layer) -> str:
    if not all(sub.built for sub in layer.modules()):
        return "0 (unbuilt)"
    return f"{layer.count_params():,}"


def _count(weights) -> tuple[int, int]:
    """(elements, bytes) of a list of weights."""
    return sum(int(w.size) for w in weights), sum(int(w.data.nbytes) for w in weights)


def summary_lines(model, rows, line_length: int = 65) -> list[str]:
    """The lines of the table for ``rows``, a list of ``(name, layer)``.

    Columns: "Layer (type)", "Output Shape" (batch axis None), "Param #"; then the totals,
    trainable and non-trainable (e.g. BatchNormalization's moving statistics).
    """
    cells = [(f"{name} ({type(layer).__name__})", _shape_text(layer), _params_text(layer))
             for name, layer in rows]
    widths = [max([29] + [len(c[0]) + 1 for c in cells]),
              max([26] + [len(c[1]) + 1 for c in cells]), 10]
    line_length = max(line_length, sum(widths))

    def row(values) -> str:
        return "".join(str(v).ljust(w) for v, w in zip(values, widths)).rstrip()

    lines = [f'Model: "{model.name}"', "_" * line_length,
             row(("Layer (type)", "Output Shape", "Param #")), "=" * line_length]
    for i, cell in enumerate(cells):
        lines.append(row(cell))
        lines.append("=" * line_length if i == len(cells) - 1 else "_" * line_length)
    if not cells:
        lines.append("=" * line_length)
    trainable, trainable_bytes = _count(model.trainable_weights)
    frozen, frozen_bytes = _count(model.non_trainable_weights)
    lines += [
        f"Total params: {trainable + frozen:,} ({_format_size(trainable_bytes + frozen_bytes)})",
        f"Trainable params: {trainable:,} ({_format_size(trainable_bytes)})",
        f"Non-trainable params: {frozen:,} ({_format_size(frozen_bytes)})",
        "_" * line_length,
    ]
    return lines
