"""``tastebud``: the command-line entry point."""

from __future__ import annotations

import typer

from tastebud.cli import (
    config,
    content,
    data,
    datasets,
    dlq,
    export,
    features,
    jobs,
    keys,
    models,
    push,
    quality,
    quickstart,
    recommend,
    replay,
    serve,
    train,
)

app = typer.Typer(
    name="tastebud",
    help="tastebud: a hybrid recommendation engine. Events in, ranked lists out.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(datasets.app, name="datasets")
app.add_typer(config.app, name="config")
app.add_typer(jobs.app, name="jobs")
app.command("scheduler")(jobs.scheduler)
app.add_typer(keys.app, name="keys")
app.add_typer(dlq.app, name="dlq")
app.add_typer(push.app, name="push")
app.command("serve")(serve.serve)
app.add_typer(models.app, name="models")
app.add_typer(content.app, name="content")
app.add_typer(features.app, name="features")
app.add_typer(export.app, name="export")
app.add_typer(quality.app, name="quality")
app.command("ingest")(data.ingest)
app.command("stats")(data.stats)
app.command("quickstart")(quickstart.quickstart)
app.command("train")(train.train_command)
app.command("recommend")(recommend.recommend_command)
app.command("evaluate")(train.evaluate_command)
app.command("replay")(replay.replay_command)


@app.callback()
def main(ctx: typer.Context) -> None:
    """Settings come from tastebud.toml (or $TASTEBUD_CONFIG) and TASTEBUD_* variables."""
    ctx.ensure_object(dict)


if __name__ == "__main__":
    app()
