"""``python -m archbench``: the same as the ``archbench`` command."""

from archbench.cli import main

main(prog_name="archbench")
