"""Row content as hashable Spark columns, whatever the column types.

The split and the random samplers key every row by ``xxhash64(seed, the row's columns)``, so
that the outcome depends on the rows, not on partitioning. Spark refuses to hash a map (two
equal maps may list their entries in different orders) or a variant. Leaving those columns out
made rows that differ only there share their keys, so they were taken for copies of one row and
which of them was kept could depend on the partitioning. Here a map becomes its entries sorted
by key (then value), a variant its JSON text (object keys sorted), recursively inside arrays,
structs and map values: equal values give equal columns, different values different ones.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T


def quoted(name: str) -> Column:
    """The top-level column ``name``, quoted (dots and backticks are part of the name)."""
    return F.col("`" + name.replace("`", "``") + "`")


def _variant(dt) -> bool:
    return hasattr(T, "VariantType") and isinstance(dt, T.VariantType)


def _needs_canon(dt) -> bool:
    if isinstance(dt, T.MapType) or _variant(dt):
        return True
    if isinstance(dt, T.ArrayType):
        return _needs_canon(dt.elementType)
    if isinstance(dt, T.StructType):
        return any(_needs_canon(f.dataType) for f in dt.fields)
    return False


def canonical(c: Column, dt) -> Column:
    """``c`` (of type ``dt``) in a form ``xxhash64`` accepts, equal exactly when the values are."""
    if not _needs_canon(dt):
        return c
    if _variant(dt):
        return F.to_json(c)
    if isinstance(dt, T.ArrayType):
        return F.transform(c, lambda x: canonical(x, dt.elementType))
    if isinstance(dt, T.StructType):
        fields = [canonical(c.getField(f.name), f.dataType).alias(f.name) for f in dt.fields]
        return F.when(c.isNotNull(), F.struct(*fields))
    entries = F.map_entries(c)  # MapType: keys cannot hold maps; values may
    if _needs_canon(dt.valueType):
        entries = F.transform(entries, lambda e: F.struct(
            e["key"].alias("key"), canonical(e["value"], dt.valueType).alias("value")))
    return F.array_sort(entries)  # keys are unique, so sorting the entries sorts by key


def content_columns(df, exclude=()) -> list[Column]:
    """Every column of ``df`` but ``exclude``, in schema order, each in its hashable form."""
    return [canonical(quoted(f.name), f.dataType) for f in df.schema.fields if f.name not in exclude]
