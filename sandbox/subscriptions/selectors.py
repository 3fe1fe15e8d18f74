"""Reads for subscriptions."""

from functools import cache

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import Col

from sandbox.subscriptions.models import Subscription


def subscription_list(*, enabled_only: bool = False) -> QuerySet[Subscription]:
    subscriptions = Subscription.objects.all()
    if enabled_only:
        subscriptions = subscriptions.filter(enabled=True)
    return subscriptions


def subscription_get(*, pk: int) -> Subscription:
    return Subscription.objects.get(pk=pk)


def subscription_get_by_name(*, name: str) -> Subscription:
    return Subscription.objects.get(name=name)


def subscription_first_enabled() -> Subscription | None:
    """The oldest enabled subscription, the one a new event goes to by default."""
    return Subscription.objects.filter(enabled=True).order_by("pk").first()


def subscription_get_or_none(*, pk: int) -> Subscription | None:
    """One subscription by id, or None.

    One plain statement, each column read through its field's own converters
    as the ORM reads it: the composer asks for its subscription on every send,
    and building the ORM's query cost ten times SQLite's look-up.
    """
    sql, columns = _reader(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for value, (column, converters) in zip(row, columns, strict=True):
        for converter in converters:
            value = converter(value, column, connection)
        values.append(value)
    return Subscription.from_db(connection.alias, _ATTNAMES, values)


_ATTNAMES = [field.attname for field in Subscription._meta.concrete_fields]


@cache
def _reader(vendor: str) -> tuple[str, list[tuple[Col, list]]]:
    """subscription_get_or_none's statement, and each column's converters."""
    quote, table = connection.ops.quote_name, Subscription._meta.db_table
    fields = Subscription._meta.concrete_fields
    sql = (
        f"SELECT {', '.join(quote(field.column) for field in fields)}"
        f" FROM {quote(table)} WHERE {quote('id')} = %s"
    )
    columns = []
    for field in fields:
        column = field.get_col(table)
        converters = connection.ops.get_db_converters(
            column
        ) + column.get_db_converters(connection)
        columns.append((column, converters))
    return sql, columns
