"""The ``dynst-pyg`` command.

Subcommands are registered in :data:`COMMANDS`; each has its own ``--help`` with
defaults shown. Errors print one clear line and exit with a non-zero code.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence


class CLIError(Exception):
    """An error reported to the user as one line, exit code 2."""


def _fmt() -> type:
    return argparse.ArgumentDefaultsHelpFormatter


def cmd_datasets(args: argparse.Namespace) -> int:
    from .datasets import data_root, dataset_summary, format_summary

    root = data_root(args.root)
    print(format_summary(dataset_summary(root, synthetic_nodes=args.synthetic_nodes), root))
    return 0


def add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="summary table of every dataset that can be found",
                       description="List every dataset the loaders know (and the synthetic default): sensors, "
                                   "steps, interval, source and checksum state.", formatter_class=_fmt())
    p.add_argument("--root", default=None, help="data root (default: $DYNST_DATA, else ../shared/data, else datasets/)")
    p.add_argument("--synthetic-nodes", type=int, default=100, help="sensors of the synthetic default")
    p.set_defaults(func=cmd_datasets)


#: Subcommand registrars, in --help order.
COMMANDS: list[Callable] = [add_datasets]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dynst-pyg", description="Which sensors can be switched off (DynST) and "
                                     "which training windows can be skipped (ST-Prune).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("dynst-pyg: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, FileNotFoundError) as exc:
        print(f"dynst-pyg {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
