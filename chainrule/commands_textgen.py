"""``chainrule textgen``: train a character-level LSTM on text and sample from it.

::

    chainrule textgen train --out runs/char --epochs 1 --max-chars 1000000
    chainrule textgen sample --model-path runs/char --length 500 --temperature 0.8 --prompt "def "

``train`` reads a text file or folder (``--corpus``; default: the Python standard library's
source), trains :class:`chainrule.textgen.CharLanguageModel` and saves it to ``--out`` after
every epoch (``model.npz`` with the vocabulary and settings, ``history.json``). ``sample`` loads
it and prints the prompt and its continuation.
"""

from __future__ import annotations

import sys

from chainrule.cli import (
    command,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)


def _add_train_arguments(parser) -> None:
    parser.add_argument("--corpus", default=None, metavar="PATH",
                        help="a text file or a folder of them (default: the Python standard "
                             "library's .py files)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder to save the model and its history to")
    parser.add_argument("--max-chars", type=positive_int, default=None,
                        help="use only the first N characters of the corpus")
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="steps per epoch (default: one pass over the training text, "
                             "characters // (seq-len × batch-size))")
    parser.add_argument("--seq-len", type=positive_int, default=64, help="characters per window")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--lr", type=positive_float, default=2e-3, help="Adam's learning rate")
    parser.add_argument("--clip-norm", type=non_negative_float, default=5.0,
                        help="largest gradient norm (0: no clipping)")
    parser.add_argument("--embedding-dim", type=positive_int, default=64)
    parser.add_argument("--units", type=positive_int, default=256, help="the LSTM's state size")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--log-every", type=positive_int, default=100,
                        help="steps between log lines")
    parser.add_argument("--backup-every", type=positive_int, default=100, metavar="N",
                        help="back the run up into --out every N steps and after every epoch "
                             "(default: %(default)s)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the killed run in --out from its backup (the same "
                             "options and corpus are needed)")


def _add_sample_arguments(parser) -> None:
    parser.add_argument("--model-path", required=True, metavar="DIR",
                        help="the folder `textgen train --out` wrote")
    parser.add_argument("--length", type=positive_int, default=500, help="characters to generate")
    parser.add_argument("--temperature", type=non_negative_float, default=0.8,
                        help="softmax temperature: lower is safer, higher more inventive; "
                             "0 takes the most likely character")
    parser.add_argument("--prompt", default="", help="text to start from (default: a newline)")
    parser.add_argument("--seed", type=non_negative_int, default=None)


@command("textgen", "Train a character-level LSTM on text (default: Python's own source code) "
                    "and sample text from it.")
def textgen_command(parser):
    actions = parser.add_subparsers(dest="textgen_action", metavar="ACTION")
    _add_train_arguments(actions.add_parser(
        "train", help="train a model and save it to --out",
        description="Train Embedding → LSTM → Dense on next-character prediction."))
    _add_sample_arguments(actions.add_parser(
        "sample", help="generate text with a trained model",
        description="Generate text with a model saved by `chainrule textgen train`."))

    def run(args) -> int:
        if args.textgen_action == "train":
            return _train(args)
        if args.textgen_action == "sample":
            return _sample(args)
        parser.print_help()
        return 2

    return run


def _train(args) -> int:
    from chainrule import textgen
    from chainrule.datasets import text

    corpus = text.load(args.corpus, max_chars=args.max_chars)
    generator = textgen.train(
        corpus, out_dir=args.out, log=lambda line: print(line, flush=True),
        log_every=args.log_every, backup_every=args.backup_every, resume=args.resume,
        epochs=args.epochs, steps_per_epoch=args.steps,
        seq_len=args.seq_len, batch_size=args.batch_size, learning_rate=args.lr,
        clip_norm=args.clip_norm, embedding_dim=args.embedding_dim, units=args.units,
        seed=args.seed)
    history = generator.history
    print(f"saved to {args.out}: final loss {history.loss[-1]:.4f}, val_loss "
          f"{history.val_loss[-1]:.4f} (nats per character)")
    return 0


def _sample(args) -> int:
    from chainrule import textgen

    try:
        generator = textgen.TextGenerator.load(args.model_path)
        sample = generator.sample(args.length, args.temperature, args.prompt, args.seed)
    except (FileNotFoundError, ValueError) as error:
        print(f"chainrule textgen sample: {error}", file=sys.stderr)
        return 1
    print(sample)
    return 0
