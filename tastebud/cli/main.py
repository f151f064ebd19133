"""``tastebud``: the command-line entry point.

Commands are registered lazily (click's documented "LazyGroup" pattern): each is named here
with the module that defines it and the first paragraph of its help, and its module is
imported only when the command runs. ``tastebud --help`` then imports no command module,
and ``tastebud keys list`` imports ``tastebud.cli.keys`` alone (docs/benchmarks.md,
"Command-line start-up"). ``tests/test_cli_startup.py`` checks that the help spelled out
here is each command's own and that ``--help`` prints the same with every module loaded.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup


class LazyCommand(NamedTuple):
    """A command (a function) or group (a ``typer.Typer``) at ``module:attribute``."""

    name: str
    module: str
    attribute: str
    help: str


# In typer's order: commands first, then groups, each in the order they were added.
COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "scheduler",
        "tastebud.cli.jobs",
        "scheduler",
        "Run the job schedules in this process (embedded mode; no orchestrator needed).",
    ),
    LazyCommand(
        "dashboard",
        "tastebud.cli.dashboard",
        "dashboard",
        "Run the dashboard: the recommendations explorer, operations, models and business\n"
        "impact, in a browser (Streamlit; Ctrl-C stops).",
    ),
    LazyCommand(
        "serve",
        "tastebud.cli.serve",
        "serve",
        "Serve the HTTP API: events and catalog in; recommendations, similar, popular and\n"
        "trending items and features out; health and metrics (docs/reference.md lists every "
        "route).",
    ),
    LazyCommand(
        "ingest",
        "tastebud.cli.data",
        "ingest",
        "Load events, items or users into the stores, reporting every rejected row.",
    ),
    LazyCommand(
        "stats",
        "tastebud.cli.data",
        "stats",
        "Users, items, events by type and the time range of what is stored.",
    ),
    LazyCommand(
        "quickstart",
        "tastebud.cli.quickstart",
        "quickstart",
        "Generate a world that ends now, ingest it, train, run the jobs, show two users'\n"
        "recommendations and what trends, then serve it (Ctrl-C stops).",
    ),
    LazyCommand(
        "train",
        "tastebud.cli.train",
        "train_command",
        "Train a model (the default configuration, a --model family, or AutoML's best).",
    ),
    LazyCommand(
        "recommend",
        "tastebud.cli.recommend",
        "recommend_command",
        "Top-K items per user to CSV: as the server ranks them (--alias), or the model's raw\n"
        "ranking (--model). Unknown users get the cold-start (popular) list either way.",
    ),
    LazyCommand(
        "evaluate",
        "tastebud.cli.evaluate",
        "evaluate_command",
        "Split, train each model on the train part, rank the whole catalog, and report.",
    ),
    LazyCommand(
        "replay",
        "tastebud.cli.replay",
        "replay_command",
        "Replay a dataset's events in time order, shifted to end now, at --speed.",
    ),
    LazyCommand(
        "simulate",
        "tastebud.cli.simulate",
        "simulate",
        "Run synthetic users with known tastes against the HTTP API: they ask for lists, look\n"
        "at them with position bias, click, play, skip, like and buy by their true preferences;\n"
        "prints what each variant served and what the truth says of it.",
    ),
    LazyCommand(
        "datasets",
        "tastebud.cli.datasets",
        "app",
        "Public datasets and the synthetic world generator.",
    ),
    LazyCommand("config", "tastebud.cli.config", "app", "Inspect settings."),
    LazyCommand(
        "jobs", "tastebud.cli.jobs", "app", "Batch jobs: list, run one interval, show run history."
    ),
    LazyCommand("keys", "tastebud.cli.keys", "app", "Manage API keys."),
    LazyCommand(
        "dlq", "tastebud.cli.dlq", "app", "Inspect and replay events the gateway could not store."
    ),
    LazyCommand("push", "tastebud.cli.push", "app", "Web push: VAPID keys and subscriptions."),
    LazyCommand(
        "models", "tastebud.cli.models", "app", "Registered model versions and their aliases."
    ),
    LazyCommand("content", "tastebud.cli.content", "app", "Content embeddings of catalog items."),
    LazyCommand(
        "features",
        "tastebud.cli.features",
        "app",
        "The feature store: views, materialization, parity.",
    ),
    LazyCommand("export", "tastebud.cli.export", "app", "Export data for other engines."),
    LazyCommand(
        "quality",
        "tastebud.cli.quality",
        "app",
        "Data-quality checks of the event log (docs/quality.md).",
    ),
    LazyCommand(
        "monitor",
        "tastebud.cli.monitor",
        "app",
        "Model monitoring and retraining triggers (docs/monitoring.md).",
    ),
    LazyCommand(
        "experiments",
        "tastebud.cli.experiments",
        "app",
        "Online experiments: define, start, pause, resume, stop (docs/experiments.md).",
    ),
)


def load_command(spec: LazyCommand) -> Any:
    """The click command (or group) of ``spec``, built from its module as typer would."""
    target = getattr(importlib.import_module(spec.module), spec.attribute)
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
    else:
        single = typer.Typer()
        single.command(spec.name)(target)
        command = typer.main.get_command(single)
    command.name = spec.name
    return command


class LazyGroup(TyperGroup):
    """The top-level group: placeholders (name and help) until a command is resolved."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pending = {spec.name: spec for spec in COMMANDS}
        for spec in COMMANDS:
            self.commands[spec.name] = TyperCommand(name=spec.name, help=spec.help)

    def load(self, name: str) -> Any:
        """The real command ``name``, importing its module the first time."""
        spec = self._pending.pop(name, None)
        if spec is not None:
            self.commands[name] = load_command(spec)
        return self.commands.get(name)

    def load_all(self) -> None:
        for name in list(self._pending):
            self.load(name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] in self._pending:
            self.load(args[0])
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="tastebud",
    cls=LazyGroup,
    help="tastebud: a hybrid recommendation engine. Events in, ranked lists out.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(ctx: typer.Context) -> None:
    """Settings come from tastebud.toml (or $TASTEBUD_CONFIG) and TASTEBUD_* variables."""
    ctx.ensure_object(dict)


if __name__ == "__main__":
    app()
