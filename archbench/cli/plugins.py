"""``archbench plugins``: installed plugins, their hooks and load errors."""

from __future__ import annotations

import json

import click

from archbench.cli.options import fail, setup


@click.command("plugins")
@click.argument("name", required=False)
@click.option("--hook", "hook_name", metavar="HOOK", help="Only plugins implementing HOOK.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(name: str | None, hook_name: str | None, as_json: bool) -> None:
    """Show installed plugins: distribution, version, hooks implemented, load errors and
    hooks whose answers are ignored (they raised, or answered the wrong type).

    \b
    Examples:
      archbench plugins
      archbench plugins vit --json
      archbench plugins --hook archbench_analyze
    """
    from dataclasses import asdict

    from archbench import hookspecs

    pm, _ = setup()
    pm.check_collected()
    infos = list(pm.infos.values())
    if name is not None:
        infos = [i for i in infos if i.name == name]
        if not infos:
            fail(f"no plugin named {name!r} is installed; installed: "
                 f"{', '.join(sorted(pm.infos))}")
    if hook_name is not None:
        if not hook_name.startswith("archbench_"):
            hook_name = f"archbench_{hook_name}"
        if not hasattr(hookspecs, hook_name):
            hooks = sorted(h for h in dir(hookspecs) if h.startswith("archbench_"))
            fail(f"--hook {hook_name!r} is not an archbench hook; hooks: {', '.join(hooks)}")
        infos = [i for i in infos if hook_name in i.hooks]
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    for info in infos:
        click.echo(f"{info.name} ({info.kind}; {info.distribution} {info.version}; {info.module})")
        if info.error:
            click.echo(f"  FAILED TO LOAD: {info.error}")
        else:
            click.echo(f"  hooks: {', '.join(info.hooks) or '-'}")
        for problem in info.problems:
            click.echo(f"  PROBLEM: {problem}")
