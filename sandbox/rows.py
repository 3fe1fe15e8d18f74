"""One row by a unique column's value, read with one plain statement.

For the reads a busy path makes on every request (the composer's subscription,
the mock endpoint a delivery reaches): building the ORM's query for a model's
columns cost several times SQLite's own look-up. Each column is read through its
field's own converters, so the instance is the one the ORM would have built.
"""

from functools import cache
from typing import TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


def row_or_none(model: type[M], field: str, value: object) -> M | None:
    """The `model` whose unique `field` holds `value`, or None."""
    sql, columns, attnames = _reader(model, field, connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for stored, (column, converters) in zip(row, columns, strict=True):
        for converter in converters:
            stored = converter(stored, column, connection)
        values.append(stored)
    return model.from_db(connection.alias, attnames, values)


@cache
def _reader(model: type[Model], field: str, vendor: str) -> tuple[str, list, list]:
    """row_or_none's statement, each column with its converters, the attnames."""
    quote, table = connection.ops.quote_name, model._meta.db_table
    fields = model._meta.concrete_fields
    sql = (
        f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(table)}"
        f" WHERE {quote(model._meta.get_field(field).column)} = %s"
    )
    columns = []
    for f in fields:
        column = f.get_col(table)
        converters = connection.ops.get_db_converters(
            column
        ) + column.get_db_converters(connection)
        columns.append((column, converters))
    return sql, columns, [f.attname for f in fields]
