"""``archbench list``: architectures and variants (no torch unless a pattern names timm)."""

from __future__ import annotations

import fnmatch
import json

import click

from archbench.cli.options import fail, setup
from archbench.core.errors import UsageError


@click.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(pattern: str, as_json: bool) -> None:
    """List architectures and their variants matching PATTERN (fnmatch, e.g. 'vit:base*').

    \b
    Examples:
      archbench list
      archbench list 'swin:*384'
    """
    _, registry = setup()
    rows = []
    try:
        matches = registry.match(pattern)
    except UsageError as exc:
        fail(str(exc))
    for arch, name, variant in matches:
        rows.append({
            "name": f"{arch.name}:{name}",
            "default": name == arch.default_variant and name in arch.variants,
            "family": arch.family,
            "input_kind": arch.input_kind,
            "input": f"seq {variant.seq_len}" if arch.input_kind == "tokens"
            else f"{variant.img_size}x{variant.img_size}",
            "description": variant.description,
            "plugin": arch.plugin,
            "paper": arch.paper,
            "config": dict(variant.config),
            # published ImageNet-1k top-1 (%), source, pre-training data; null if none
            "published": variant.published.as_dict() if variant.published else None,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if ":" not in pattern:
        for arch in registry.architectures.values():
            if arch.find_variants is not None and fnmatch.fnmatchcase(arch.name, pattern):
                rows.append({"name": f"{arch.name}:<name>", "default": False,
                             "family": arch.family, "input_kind": arch.input_kind,
                             "input": "model's own", "plugin": arch.plugin,
                             "paper": arch.paper, "description": arch.description or
                             f"list them: archbench list '{arch.name}:*PATTERN*'"})
    if not rows:
        fail(f"no architecture matches {pattern!r}; known: {', '.join(registry.names())}")
    from tabulate import tabulate

    table = [[r["name"] + (" *" if r["default"] else ""), r["family"], r["input_kind"],
              r["input"], _top1(r.get("published")), r["description"], r["plugin"]]
             for r in rows]
    click.echo(tabulate(table, headers=["name (* default)", "family", "kind", "input",
                                        "top-1 %", "description", "plugin"]))
    papers = {(r["family"], r["paper"]) for r in rows}
    click.echo("\n" + "\n".join(f"{family}: {paper}" for family, paper in sorted(papers)))


def _top1(published: dict | None) -> str:
    """The published top-1 as the table shows it: ``81.3``, ``86.3 (22k)``, or ``-``."""
    if not published:
        return "-"
    pretrain = published["pretrain"]
    return f"{published['top1']:.1f}" + ("" if pretrain == "ImageNet-1k" else
                                       f" ({pretrain.removeprefix('ImageNet-')})")
