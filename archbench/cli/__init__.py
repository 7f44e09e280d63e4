"""The ``archbench`` command line: one module per command. Commands parse, validate and
print; a measuring command makes a plan and hands it to a session (:mod:`archbench.run`).

Start-up stays light: torch, timm, fvcore and pandas are imported only by the commands
that measure, after every argument has been checked.
"""

from __future__ import annotations

import atexit
import functools
import gc
from typing import IO, Any

import click

from archbench import __version__
from archbench.cli.cache import cache_command
from archbench.cli.compare import compare
from archbench.cli.history import history
from archbench.cli.listing import list_command
from archbench.cli.mixers import mixers
from archbench.cli.plugins import plugins_command
from archbench.cli.report import report
from archbench.cli.sweep import sweep


class OneLineUsageError(click.UsageError):
    """A usage error that click found (unknown option, missing argument, bad choice),
    shown as every other bad input is: one line, ``archbench: error: ...``, exit 2."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"archbench: error: {self.message}", file=file, err=file is None)


#: click >= 8.2 raises this for a bare command that shows its help (8.1 has none).
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", OneLineUsageError)


def _one_line(exc: click.UsageError) -> click.UsageError:
    if isinstance(exc, (OneLineUsageError, _NO_ARGS_IS_HELP)):
        return exc  # already one line, or a bare command that shows its help
    text = " ".join(exc.format_message().split())
    where = exc.ctx.command_path if exc.ctx is not None else "archbench"
    return OneLineUsageError(f"{text} (see '{where} --help')", exc.ctx)


class Main(click.Group):
    """The ``archbench`` group: click's own usage errors, in the group's arguments or any
    command's, become one line and exit 2 (``--help`` and ``--version`` are unchanged)."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None


@click.group(cls=Main,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="archbench")
def main() -> None:
    """Compare vision-Transformer architectures, measured, side by side.

    \b
    Example:
      archbench compare vit swin hornet
    """
    _cheap_exit()


@functools.cache
def _cheap_exit() -> None:
    """At the interpreter's exit, freeze every object before its last garbage collection:
    the process is ending, so its objects need not be searched for cycles. With torch
    loaded that search takes 0.5-1 s on the development machine, longer than most
    answers from the complexity cache."""
    atexit.register(gc.freeze)


for _command in (list_command, plugins_command, compare, sweep, mixers, report, history,
                 cache_command):
    main.add_command(_command)
