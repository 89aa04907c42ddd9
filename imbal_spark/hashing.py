"""Row content as hashable Spark columns: equal rows give equal columns, different rows
different ones, whatever the column types.

The split and the random samplers key every row by ``xxhash64(seed, the row's columns)``, so
that the outcome depends on the rows, not on partitioning. Spark's hash has three gaps this
module closes, because rows it cannot tell apart are taken for copies of one row, and which of
them is kept may then depend on the partitioning:

* it refuses maps (equal maps may list their entries in different orders) and variants: a map
  becomes its entries sorted by key, a variant its JSON text in UTC with its type schema;
* it skips null values, so ``(null, 1)`` and ``(1, null)`` hash alike: each struct, array and
  map entry carries flags of which of its values are null, and a row with nulls hashes a mix of
  the seed and its null flags after the seed;
* it chains the elements of nested arrays without their lengths, so ``[[1, 2], []]`` and
  ``[[1], [2]]`` hash alike: every array and map carries its size, and a user-defined type (an
  ML vector) is hashed alone into one value.

Spark defines no equality for variants: two variants that print the same JSON and have the same
type schema (which says ``ARRAY<VARIANT>`` for any array) are taken as equal, e.g. ``[1.5]`` as a
decimal or as a double.

Columns of plain types are hashed as they are and a row without nulls keeps its seed, so such
rows keep Spark's own hash: the usual data pays one null test per nullable column, and its
keys, hence its splits and samples, are those of earlier versions.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .names import col



def _variant(dt) -> bool:
    return hasattr(T, "VariantType") and isinstance(dt, T.VariantType)


def null_flags(cols: list, nullable: list) -> list[Column]:
    """Words (long, 0 when none) whose bits say which of ``cols`` are null; only the nullable
    ones are counted."""
    idx = [i for i, n in enumerate(nullable) if n]
    words = []
    for s in range(0, len(idx), 62):
        bits = [F.when(cols[i].isNull(), F.lit(1 << b)).otherwise(F.lit(0))
                for b, i in enumerate(idx[s:s + 62])]
        w = bits[0]
        for b in bits[1:]:
            w = w + b
        words.append(w.cast("long"))
    return words


def canonical(c: Column, dt) -> Column:
    """``c`` (of type ``dt``, not null: the caller flags nulls) in a form ``xxhash64`` accepts and
    hashes one to one with the value."""
    if _variant(dt):
        return F.struct(F.schema_of_variant(c), F.to_json(c, {"timeZone": "UTC"}))
    if isinstance(dt, T.CalendarIntervalType):
        return c.cast("string")
    if isinstance(dt, T.ArrayType):
        et = dt.elementType
        if dt.containsNull:
            elems = F.transform(c, lambda x: F.struct(x.isNull(), canonical(x, et)))
        elif isinstance(et, (T.ArrayType, T.StructType, T.MapType, T.CalendarIntervalType, T.UserDefinedType)) \
                or _variant(et):
            elems = F.transform(c, lambda x: canonical(x, et))
        else:
            elems = c
        return F.struct(F.size(c), elems)
    if isinstance(dt, T.UserDefinedType):  # e.g. ML vectors: one leaf each, so no boundaries blur
        return F.when(c.isNotNull(), F.xxhash64(c))
    if isinstance(dt, T.StructType):
        # fields read by position (names may repeat, or differ only in case)
        pos = T.StructType([T.StructField(f"_{i}", f.dataType, f.nullable) for i, f in enumerate(dt.fields)])
        fields = [c.cast(pos).getField(f"_{i}") for i in range(len(dt.fields))]
        parts = [canonical(x, f.dataType) for x, f in zip(fields, dt.fields)]
        return F.struct(*null_flags(fields, [f.nullable for f in dt.fields]), *parts)
    if isinstance(dt, T.MapType):
        kt, vt = dt.keyType, dt.valueType
        entries = F.transform(F.map_entries(c), lambda e: F.struct(
            canonical(e["key"], kt).alias("k"), e["value"].isNull().alias("n"),
            canonical(e["value"], vt).alias("v")))
        # keys are unique and orderable (their canonical form), so sorting by key alone is a total
        # order, whatever the values' type
        by_key = F.array_sort(entries, lambda a, b: F.when(a["k"] < b["k"], -1)
                              .when(a["k"] > b["k"], 1).otherwise(0))
        return F.struct(F.size(c), by_key)
    return c


def content_hash(df, seed: Column, *salts: Column, exclude=()) -> Column:
    """``xxhash64(seed, *salts, every column of df but exclude)``, one to one with the row's
    content: columns in canonical form and, after the seed, for a row with nulls only, a 64-bit
    mix of the seed and the flags of which columns are null (null otherwise, which the hash
    skips). So rows of plain columns without nulls keep the keys Spark's own hash gives them
    (and so their splits and samples)."""
    fields = [f for f in df.schema.fields if f.name not in exclude]
    cols = [col(f.name) for f in fields]
    forms = [canonical(c, f.dataType) for c, f in zip(cols, fields)]
    words = null_flags(cols, [f.nullable for f in fields])
    if words:
        any_null = words[0] != 0
        for w in words[1:]:
            any_null = any_null | (w != 0)
        # null (so skipped by the hash) in a row without nulls, which keeps its old key
        salts = (F.when(any_null, F.xxhash64(seed, *words)), *salts)
    return F.xxhash64(seed, *salts, *forms)
