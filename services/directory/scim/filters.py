"""SCIM filters and sort keys as SQL over the ``people`` read table.

scim2-models parses and checks a filter against the User schema (a bad one
is ``invalidFilter`` before anything runs) and gives its syntax tree; this
module walks that tree (``FilterVisitor``) into a WHERE clause with bound
parameters, for the attributes the table has a column for. A filter naming
anything else (a value path such as ``emails[type eq "work"]``, a
multi-valued attribute) raises ``Untranslatable``: the caller then evaluates
the filter with scim2-models' own ``match`` over the organisation's people,
so every valid filter is answered, the common ones by an index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim2_models import ScimFilter
from scim2_models.path import AttributeBinding, FilterVisitor
from scim2_models.path.expressions import (
    CompareOperator,
    Comparison,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from scim2_models.path.resolution import coerce_value

from services.directory.scim.models import BINOME_USER, CORE_USER, ScimUser

ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass(frozen=True)
class Column:
    sql: str
    kind: str  # "text" (compared case-insensitively unless exact), "exact", "bool", "int", "time"


#: (schema, field, sub-field) -> column. Everything a filter or sortBy may
#: name that the table holds in a column of its own.
COLUMNS: dict[tuple[str, str, str | None], Column] = {
    (CORE_USER, "id", None): Column("person_id::text", "exact"),
    (CORE_USER, "external_id", None): Column("external_id", "exact"),
    (CORE_USER, "user_name", None): Column("user_name", "text"),
    (CORE_USER, "display_name", None): Column("display_name", "text"),
    (CORE_USER, "title", None): Column("title", "text"),
    (CORE_USER, "name", "given_name"): Column("given_name", "text"),
    (CORE_USER, "name", "family_name"): Column("family_name", "text"),
    (CORE_USER, "preferred_language", None): Column("preferred_language", "text"),
    (CORE_USER, "locale", None): Column("locale", "text"),
    (CORE_USER, "timezone", None): Column("timezone", "text"),
    (CORE_USER, "active", None): Column("active", "bool"),
    (CORE_USER, "meta", "created"): Column("created_at", "time"),
    (CORE_USER, "meta", "last_modified"): Column("last_modified", "time"),
    (ENTERPRISE_USER, "employee_number", None): Column("employee_number", "text"),
    (ENTERPRISE_USER, "cost_center", None): Column("cost_center", "text"),
    (ENTERPRISE_USER, "organization", None): Column("organization", "text"),
    (ENTERPRISE_USER, "division", None): Column("division", "text"),
    (ENTERPRISE_USER, "department", None): Column("department", "text"),
    (ENTERPRISE_USER, "manager", "value"): Column("manager_id", "exact"),
    (BINOME_USER, "country", None): Column("country", "text"),
    (BINOME_USER, "entity", None): Column("entity", "text"),
    (BINOME_USER, "job_level", None): Column("job_level", "int"),
    (BINOME_USER, "business_function", None): Column("business_function", "text"),
}

_SQL_OPERATORS = {
    CompareOperator.eq: "=", CompareOperator.gt: ">", CompareOperator.ge: ">=",
    CompareOperator.lt: "<", CompareOperator.le: "<=",
}


class Untranslatable(Exception):
    """The filter or sort key names something without a column."""


def column_of(binding: AttributeBinding | None) -> Column:
    if binding is None or binding.is_multivalued:
        raise Untranslatable()
    schema = str(getattr(binding.model, "__schema__", "") or "")
    column = COLUMNS.get((schema, binding.field_name, binding.sub_field_name))
    if column is None:
        raise Untranslatable()
    return column


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlFilter(FilterVisitor[str]):
    """Walks a bound filter into SQL; parameters are numbered from ``first``."""

    def __init__(self, scim_filter: ScimFilter[ScimUser], first: int) -> None:
        self.filter, self.params, self.first = scim_filter, [], first

    def _param(self, value: Any) -> str:
        self.params.append(value)
        return f"${self.first + len(self.params) - 1}"

    def visit_comparison(self, node: Comparison) -> str:
        binding = self.filter.resolve_comparison(node.attr_path)
        column = column_of(binding)
        value = coerce_value(binding, node.value, node.op) if node.value is not None else None
        if value is None:  # "eq null": RFC 7644 §3.4.2.2 reads it as "not present"
            absent = f"{column.sql} IS NULL"
            return absent if node.op is CompareOperator.eq else f"{column.sql} IS NOT NULL"
        folded = column.kind == "text"
        sql = f"lower({column.sql})" if folded else column.sql
        if isinstance(value, str) and folded:
            value = value.lower()
        if column.kind == "text" or column.kind == "exact":
            value = str(value)
        if node.op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
            pattern = {CompareOperator.co: "%{}%", CompareOperator.sw: "{}%", CompareOperator.ew: "%{}"}[node.op]
            return f"{sql} LIKE {self._param(pattern.format(_like(value)))}"
        if node.op is CompareOperator.ne:
            return f"({sql} IS NULL OR {sql} <> {self._param(value)})"
        return f"{sql} {_SQL_OPERATORS[node.op]} {self._param(value)}"

    def visit_present(self, node: Present) -> str:
        column = column_of(self.filter.resolve(node.attr_path))
        if column.kind in ("text", "exact"):
            return f"coalesce({column.sql}, '') <> ''"
        return f"{column.sql} IS NOT NULL"

    def visit_not(self, node: Not) -> str:
        return f"NOT coalesce(({self.visit(node.expr)}), false)"

    def visit_logical_expr(self, node: LogicalExpr) -> str:
        joiner = " AND " if node.op is LogicalOperator.and_ else " OR "
        return "(" + joiner.join(f"coalesce(({self.visit(t)}), false)" for t in node.terms) + ")"

    def visit_value_path(self, node: ValuePath) -> str:
        raise Untranslatable()


def where(scim_filter: ScimFilter[ScimUser], first: int) -> tuple[str, list[Any]]:
    """The SQL condition of ``scim_filter`` and its parameters (``$first``...);
    raises ``Untranslatable`` when a column is missing."""
    visitor = SqlFilter(scim_filter, first)
    return visitor.visit(scim_filter.ast), visitor.params
