"""Hand-written SELECTs that read model rows as the ORM would: for the statements on the hottest paths, written once
per process, where Django would compile the same SQL again on every request (docs/benchmarks.md). The backend's
converters are applied to what they read (SQLite stores times and JSON as text)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Model


@dataclass(frozen=True)
class Columns:
    """A model's concrete columns as a hand-written SELECT reads them, turned into an instance as the ORM would."""

    model: type[Model]
    sql: str
    attnames: list[str]
    converters: list[tuple[Any, list[Callable[..., Any]]]]

    @classmethod
    def of(cls, model: type[Model], alias: str, names: Sequence[str] = ()) -> Columns:
        """`names` of the model's fields (every concrete field when empty), read from the table as `alias`."""
        meta = model._meta
        fields: Sequence[Any] = [meta.get_field(name) for name in names] if names else meta.concrete_fields
        columns = [field.get_col(model._meta.db_table) for field in fields]
        return cls(
            model,
            ", ".join(f"{alias}.{connection.ops.quote_name(str(field.column))}" for field in fields),
            [field.attname for field in fields],
            [(col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)) for col in columns],
        )

    def values(self, row: Sequence[Any]) -> list[Any]:
        """The row's values as the ORM would give them."""
        converted = []
        for value, (col, functions) in zip(row, self.converters, strict=True):
            for function in functions:
                value = function(value, col, connection)
            converted.append(value)
        return converted

    def build(self, row: Sequence[Any]) -> Any:
        """An instance of the model from a row of every concrete column."""
        return self.model.from_db(connection.alias, self.attnames, self.values(row))
