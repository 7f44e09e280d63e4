"""The ``archbench`` command line: one module per command. Commands parse, validate and
print; a measuring command makes a plan and hands it to a session (:mod:`archbench.run`).

Start-up stays light: torch, timm, fvcore and pandas are imported only by the commands
that measure, after every argument has been checked.
"""

from __future__ import annotations

import click

from archbench import __version__
from archbench.cli.compare import compare
from archbench.cli.listing import list_command
from archbench.cli.mixers import mixers
from archbench.cli.plugins import plugins_command
from archbench.cli.report import report
from archbench.cli.sweep import sweep


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="archbench")
def main() -> None:
    """Compare vision-Transformer architectures, measured, side by side.

    \b
    Example:
      archbench compare vit swin hornet
    """


for _command in (list_command, plugins_command, compare, sweep, mixers, report):
    main.add_command(_command)
