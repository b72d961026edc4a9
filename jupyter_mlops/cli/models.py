"""The model registry's commands: register a run's model, list models, move an alias."""

from __future__ import annotations

import click

from .options import (
    format_option,
    store_of,
)
from .output import emit_json, friendly_errors

__all__ = ["alias_command", "models_command", "register_command"]


@click.command("register")
@click.argument("run")
@click.argument("name")
@click.option("--artifact", help="The run's artifact to register (default: its one model).")
@click.option(
    "--require-reproduced",
    is_flag=True,
    help="Refuse unless the run's latest replay reproduced it (within tolerance counts).",
)
@format_option
@click.pass_context
@friendly_errors
def register_command(
    ctx: click.Context,
    run: str,
    name: str,
    artifact: str | None,
    require_reproduced: bool,
    output_format: str,
) -> None:
    """Register RUN's model as the next version of the model NAME."""
    from ..registry import register_model

    version = register_model(
        name, run, artifact, require_reproduced=require_reproduced, store=store_of(ctx)
    )
    if output_format == "json":
        emit_json(version)
    else:
        click.echo(
            f"registered {version['name']}/{version['version']}: {version['artifact']} of run "
            f"{version['run_id'][:12]} (verdict: {version['verdict'] or 'never replayed'})"
        )


@click.command("models")
@click.argument("name", required=False)
@format_option
@click.pass_context
@friendly_errors
def models_command(ctx: click.Context, name: str | None, output_format: str) -> None:
    """List registered models and their versions (of NAME only when given)."""
    from ..registry import models

    found = models(name, store=store_of(ctx))
    if output_format == "json":
        emit_json({"versions": found, "count": len(found)})
        return
    from ..text import models_table

    click.echo(models_table(found))


@click.command("alias")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.argument("alias")
@click.option("--remove", is_flag=True, help="Remove ALIAS from NAME instead (VERSION unused).")
@format_option
@click.pass_context
@friendly_errors
def alias_command(
    ctx: click.Context, name: str, version: int, alias: str, remove: bool, output_format: str
) -> None:
    """Point ALIAS (prod, staging) of the model NAME at VERSION, moving it from another."""
    from ..registry import set_alias

    result = set_alias(name, None if remove else version, alias, store=store_of(ctx))
    if output_format == "json":
        emit_json(result)
    elif remove:
        click.echo(f"removed {name}@{alias}")
    else:
        click.echo(f"{name}@{alias} is now {name}/{version}")
