"""``/2/query/<resource>``: field definitions, and rows of ``[status, value]`` cells."""

from __future__ import annotations

from typing import Any, NamedTuple

from gwm.rapi.constants import QueryFieldStatus
from gwm.rapi.schemas.base import RapiModel


class RapiQueryField(RapiModel):
    """A field definition from ``/2/query/<resource>[/fields]``."""

    name: str
    title: str | None = None
    kind: str | None = None
    doc: str | None = None


class RapiQueryCell(NamedTuple):
    """One ``[status, value]`` cell; ``value`` is meaningful only if ``status`` is NORMAL."""

    status: QueryFieldStatus
    value: Any


class RapiQueryResult(RapiModel):
    """``/2/query/<resource>``: field definitions and rows of ``[status, value]`` cells."""

    fields: list[RapiQueryField]
    data: list[list[RapiQueryCell]]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def rows(self) -> list[dict[str, RapiQueryCell]]:
        """Each row as ``{field name: RapiQueryCell}``."""
        names = self.names
        return [dict(zip(names, row, strict=False)) for row in self.data]

    def values(self) -> list[dict[str, Any]]:
        """Each row as ``{field name: value}``, None where the status is not NORMAL."""
        return [
            {
                name: cell.value if cell.status == QueryFieldStatus.NORMAL else None
                for name, cell in row.items()
            }
            for row in self.rows()
        ]


class RapiQueryFieldsResult(RapiModel):
    """``/2/query/<resource>/fields``."""

    fields: list[RapiQueryField]
