"""A JSONField that decodes with orjson.

A page of 100 full instances decodes a dozen JSON columns per row, and the
standard library's decoder made that a quarter of the request. The column, its
type and its migrations are Django's own (``deconstruct`` names Django's
class), so swapping the field needs no migration and can be undone the same way.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.db import models
from django.db.models.fields.json import KeyTransform


class JSONField(models.JSONField):
    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or self.decoder is not None:
            return super().from_db_value(value, expression, connection)
        if isinstance(expression, KeyTransform) and not isinstance(value, str):
            return value  # SQLite gives a key's non-string value in its own SQL type
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:  # what orjson refuses (NaN, huge integers): as Django
            return super().from_db_value(value, expression, connection)

    def deconstruct(self) -> Any:
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs
