"""``tastebud content``: build or update item content embeddings, inspect them."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from tastebud.cli.common import EXIT_STORE, fail, out, settings_from_context, stores_for

app = typer.Typer(help="Content embeddings of catalog items.", no_args_is_help=True)

EXIT_FAILED = 1


@app.command("embed")
def embed(
    ctx: typer.Context,
    items: Annotated[
        list[str] | None,
        typer.Option("--items", help="Only (re)embed these item ids (repeat the option)."),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option(help="Refit the embedder on the whole catalog (new vector space).")
    ] = False,
    text_encoder: Annotated[
        str | None, typer.Option(help="auto, tfidf or minilm (a rebuild when it changes).")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Audio worker processes.")] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds per audio file (default 60).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Build the catalog's embeddings, or update them: only new and changed items (or the
    ``--items`` given) are processed; the new version becomes ``production``."""
    # Imported here, not at the top: scikit-learn and librosa cost seconds (CLI start-up).
    from tastebud.content.catalog_embedding import (  # lazy: CLI start-up
        audio_from,
        embed_catalog,
        options_from,
    )
    from tastebud.content.text import EncoderUnavailable  # lazy: CLI start-up
    from tastebud.registry import ModelLoadError, RegistryError  # lazy: CLI start-up
    from tastebud.stores import StoreError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    if text_encoder not in (None, "auto", "tfidf", "minilm"):
        raise fail(f"unknown text encoder {text_encoder!r}: auto, tfidf or minilm")
    changes = {"text_encoder": text_encoder} if text_encoder else {}
    with stores_for(settings) as stores:
        try:
            outcome = embed_catalog(
                settings,
                stores,
                only=items or None,
                rebuild=rebuild,
                options=options_from(settings, **changes),
                audio=audio_from(settings, workers=workers, timeout=timeout),
            )
        except EncoderUnavailable as error:
            raise fail(str(error)) from None
        except (ModelLoadError, RegistryError) as error:
            raise fail(f"embedding registry: {error}", EXIT_FAILED) from None
        except StoreError as error:
            raise fail(str(error), EXIT_STORE) from None
    _print_outcome(outcome.summary(), outcome.version is not None, as_json)


def _print_outcome(summary: dict[str, Any], new_version: bool, as_json: bool) -> None:
    """What an embed run did: the new version, processed/reused/removed and coverage, and
    the failures counted by reason (or that nothing was new)."""
    if as_json:
        out.print_json(json.dumps(summary, default=str))
        return
    if not new_version:
        out.print(f"nothing new or changed: {summary['reused']} item(s) already embedded")
        return
    coverage = summary["coverage"]
    out.print(
        f"[green]{summary['mode']}[/] {summary['version']}: processed {summary['processed']}, "
        f"reused {summary['reused']}, removed {summary['removed']}; coverage "
        f"{coverage['embedded']}/{coverage['items']} ({coverage['coverage_ratio']:.1%})"
    )
    for reason, count in sorted(summary["failures_by_reason"].items()):
        out.print(f"  {reason}: {count}")


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="A version or an alias.")] = "production",
) -> None:
    """The schema and coverage report of an embedding version, as JSON."""
    # Imported here, not at the top: scikit-learn (CLI start-up).
    from tastebud.content.artifact import load_artifact  # lazy: CLI start-up
    from tastebud.content.catalog_embedding import registry_for  # lazy: CLI start-up
    from tastebud.registry import ModelLoadError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    with stores_for(settings) as stores:
        try:
            artifact = load_artifact(registry_for(settings, stores), ref)
        except ModelLoadError as error:
            raise fail(f"content embeddings: {error} (run `tastebud content embed`)") from None
    report = dict(artifact.report)
    report["failures"] = report.get("failures", [])[:50]
    document = {
        "version": artifact.version,
        "schema": artifact.stored_schema,
        "report": report,
    }
    out.print_json(json.dumps(document, default=str))


@app.command("similar")
def similar(
    ctx: typer.Context,
    item_ids: Annotated[list[str], typer.Argument(help="Item ids.")],
    k: Annotated[int, typer.Option("-k", min=1, help="Neighbours per item.")] = 10,
    metadata: Annotated[
        bool, typer.Option(help="Show each item's catalog title and creator.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The nearest items by content (cosine of the production embeddings), with their
    titles and creators from the catalog."""
    # Imported here, not at the top: scikit-learn (CLI start-up).
    from tastebud.content.artifact import load_artifact  # lazy: CLI start-up
    from tastebud.content.catalog_embedding import registry_for  # lazy: CLI start-up
    from tastebud.content.similarity import ContentSimilarity  # lazy: CLI start-up
    from tastebud.registry import ModelLoadError  # lazy: CLI start-up
    from tastebud.stores import StoreError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    with stores_for(settings) as stores:
        try:
            artifact = load_artifact(registry_for(settings, stores))
        except ModelLoadError as error:
            raise fail(f"content embeddings: {error} (run `tastebud content embed`)") from None
        index = ContentSimilarity.from_artifact(artifact)
        ids, scores = index.similar(item_ids, k)
        listed = [
            [(str(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]
        catalog = {}
        if metadata:
            wanted = set(item_ids) | {i for row in listed for i, _ in row}
            try:
                catalog = stores.catalog.get_items(sorted(wanted))
            except StoreError as error:
                raise fail(str(error), EXIT_STORE) from None

    documents = [
        {
            **_entry(item_id, catalog, metadata),
            "similar": [_entry(i, catalog, metadata, s) for i, s in row],
        }
        for item_id, row in zip(item_ids, listed, strict=True)
    ]
    if as_json:
        out.print_json(json.dumps(documents))
        return
    for document in documents:
        out.print(_described(document), markup=False, highlight=False)
        if not document["similar"]:
            out.print("  unknown or not embedded", highlight=False)
        for neighbour in document["similar"]:  # type: ignore[attr-defined]
            line = f"  {neighbour['score']:.3f}  {_described(neighbour)}"
            out.print(line, markup=False, highlight=False)


def _entry(
    item_id: str, catalog: dict[str, Any], metadata: bool, score: float | None = None
) -> dict[str, object]:
    """One item of the answer: its id, its score as a neighbour, and with ``metadata`` its
    catalog title and creator (None when the catalog does not know it)."""
    document: dict[str, object] = {"item_id": item_id}
    if score is not None:
        document["score"] = round(score, 6)
    if metadata:
        item = catalog.get(item_id)
        document["title"] = item.title if item else None
        document["creator"] = item.creator if item else None
    return document


def _described(document: dict[str, object]) -> str:
    """``id  "title" by creator``, with what the catalog knows."""
    text = str(document["item_id"])
    if document.get("title"):
        text += f'  "{document["title"]}"'
    if document.get("creator"):
        text += f" by {document['creator']}"
    return text
