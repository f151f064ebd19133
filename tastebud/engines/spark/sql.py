"""A feature view's SQL, written once in DuckDB's dialect, in Spark's: translated by
sqlglot (one query for both engines, no twin to keep equal)."""

from __future__ import annotations

from collections.abc import Mapping

from tastebud.engines.base import EngineError


def spark_sql(query: str, tables: Mapping[str, str]) -> str:
    """A feature view's DuckDB SQL in Spark's dialect; ``tables`` renames its inputs
    (per-run temporary views). DuckDB's ``epoch`` keeps microseconds, Spark's
    ``unix_timestamp`` drops them: it becomes ``unix_micros(x) / 1e6``."""
    try:
        # lazy: sqlglot comes with the optional extra [spark]
        import sqlglot
        from sqlglot import exp
    except ImportError:
        raise EngineError("Spark SQL views need sqlglot: pip install 'tastebud[spark]'") from None

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.TimeToUnix):
            micros = exp.Anonymous(this="unix_micros", expressions=[node.this])
            return exp.Div(this=micros, expression=exp.Literal.number("1e6"))
        if isinstance(node, exp.Table) and node.name in tables:
            renamed = exp.Table(this=exp.to_identifier(tables[node.name]))
            if node.alias:
                renamed.set("alias", node.args.get("alias"))
            return renamed
        return node

    try:
        tree = sqlglot.parse_one(query, read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise EngineError(f"cannot translate the view's SQL for Spark: {error}") from None
    return tree.transform(rewrite).sql(dialect="spark")
