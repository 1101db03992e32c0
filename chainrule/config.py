"""Global settings with Keras's names: the layout of images and sequences.

The image layers (Conv1D, Conv2D, the pooling layers) take ``data_format="channels_first"``
(N, C, H, W) / (N, C, L), or ``"channels_last"`` (N, H, W, C) / (N, L, C). A layer given
``data_format=None`` (the default) uses the global setting, read when the layer is made.

chainrule's default for images is ``"channels_first"``: every image model, dataset and example
in chainrule is NCHW (PyTorch's layout). Keras's default is ``"channels_last"``, so Keras code
should start with ``chainrule.config.set_image_data_format("channels_last")`` or pass
``data_format`` to its layers. Until the setting is chosen (by this function or per layer), an
image whose shape looks channels-last is an error rather than a silent misreading, and the 1-D
layers read sequences as (N, L, C), the layout of chainrule's Embedding and recurrent layers
(see docs/compat.md).

>>> from chainrule import config
>>> config.image_data_format()
'channels_first'
"""

from __future__ import annotations

DATA_FORMATS = ("channels_first", "channels_last")

_DEFAULT = "channels_first"
_state = {"data_format": _DEFAULT, "chosen": False}


def image_data_format() -> str:
    """The global layout of image layers: "channels_first" (chainrule's default) or
    "channels_last" (Keras's)."""
    return _state["data_format"]


def set_image_data_format(data_format: str) -> None:
    """Set the layout that image layers made from now on use when given ``data_format=None``.

    Args:
        data_format: "channels_first" (N, C, H, W) or "channels_last" (N, H, W, C).

    Once set (to either value), inputs are read in that layout without the check for
    channels-last-looking shapes: the choice is the user's.
    """
    _state["data_format"] = normalize_data_format(data_format, "set_image_data_format")
    _state["chosen"] = True


def image_data_format_chosen() -> bool:
    """True once :func:`set_image_data_format` has been called (with either value)."""
    return _state["chosen"]


def normalize_data_format(data_format, what: str) -> str:
    """``data_format`` ("channels_first" / "channels_last", any case) as a lower-case string,
    or a ValueError naming ``what``. None is not accepted here (resolve it first)."""
    if isinstance(data_format, str) and data_format.lower() in DATA_FORMATS:
        return data_format.lower()
    raise ValueError(f"{what}: data_format must be 'channels_first' or 'channels_last', "
                     f"got {data_format!r}")


__all__ = ["image_data_format", "image_data_format_chosen", "normalize_data_format",
           "set_image_data_format"]
