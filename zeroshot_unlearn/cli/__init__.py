"""Command line: ``zeroshot-unlearn {demo,forget,audit,info,bench,generator,table,recipes,train,fetch-data}``.

One module per command (its options and its run); each calls the library's public functions and decides
nothing the library should (the forget set, the metrics row and the method list come from the library).
Exit codes: 0 success, 2 usage or validation error, 1 runtime failure (a run whose checks say
the classes were not forgotten included), 3 ``forget --no-strict`` wrote such a model anyway.
Errors print as one line; ``--debug`` shows the traceback. Every command validates its arguments before it reads
data or trains anything. Nothing here imports torch until a command runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import DivergenceError, ForgettingFailedError, UnlearnError
from . import audit, bench, demo, fetch_data, forget, generator, info, recipes, table, train
from ._common import EXIT_NOT_FORGOTTEN, HelpFormatter

COMMANDS = (demo, forget, audit, info, bench, generator, table, recipes, train, fetch_data)
"""The command modules, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zeroshot-unlearn", formatter_class=HelpFormatter,
        description="Make a trained image classifier forget whole classes without the forget data.",
        epilog="`zeroshot-unlearn COMMAND --help` describes each command. Exit codes: 0 done, 2 bad input "
               "(nothing was written), 1 the run failed (also: the classes were not forgotten), 3 forget --no-strict "
               "wrote a model that was not forgotten.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter, **kwargs)

    for module in COMMANDS:
        module.add_command(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    joined = False
    try:
        if args.command == "forget":  # started by torchrun: join its process group (data-parallel run)
            from ..runtime import init_from_environment

            joined = init_from_environment(args.device)
        return args.func(args)
    except (DivergenceError, ForgettingFailedError) as err:  # the run failed; the input was fine
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    except UnlearnError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; outputs are written atomically, nothing half-written was left", file=sys.stderr)
        return 1
    except Exception as err:  # a runtime failure: one line unless --debug
        if args.debug:
            raise
        print(f"error: {type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    finally:
        if joined:
            import torch.distributed

            torch.distributed.destroy_process_group()


__all__ = ["main", "build_parser", "COMMANDS", "EXIT_NOT_FORGOTTEN"]
