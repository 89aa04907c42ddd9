"""Row content as hashable Spark columns: equal rows give equal columns, different rows
different ones, whatever the column types.

The split and the random samplers key every row by ``xxhash64(seed, the row's columns)``, so
that the outcome depends on the rows, not on partitioning. Spark's hash has three gaps this
module closes, because rows it cannot tell apart are taken for copies of one row, and which of
them is kept may then depend on the partitioning:

* it refuses maps (equal maps may list their entries in different orders) and variants: a map
  becomes its entries sorted by key, a variant its JSON text in UTC with its type schema;
* it skips null values, so ``(null, 1)`` and ``(1, null)`` hash alike: each struct, array and
  map entry carries flags of which of its values are null, and a row with nulls hashes from a
  seed mixed with its null flags;
* it chains the elements of nested arrays without their lengths, so ``[[1, 2], []]`` and
  ``[[1], [2]]`` hash alike: every array and map carries its size.

Columns of plain types are hashed as they are and a row without nulls keeps its seed, so such
rows keep Spark's own hash: the usual data pays one null test per nullable column, and its
keys, hence its splits and samples, are those of earlier versions.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .errors import InputError


def quoted(name: str) -> Column:
    """The top-level column ``name``, quoted (dots and backticks are part of the name)."""
    return F.col("`" + name.replace("`", "``") + "`")


def _variant(dt) -> bool:
    return hasattr(T, "VariantType") and isinstance(dt, T.VariantType)


def _has_map(dt) -> bool:
    if isinstance(dt, T.MapType) or _variant(dt):
        return True
    if isinstance(dt, T.ArrayType):
        return _has_map(dt.elementType)
    if isinstance(dt, T.StructType):
        return any(_has_map(f.dataType) for f in dt.fields)
    return False


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


def canonical(c: Column, dt, where: str = "column") -> Column:
    """``c`` (of type ``dt``, not null: the caller flags nulls) in a form ``xxhash64`` accepts and
    hashes one to one with the value."""
    if _variant(dt):
        return F.struct(F.schema_of_variant(c), F.to_json(c, {"timeZone": "UTC"}))
    if isinstance(dt, T.CalendarIntervalType):
        return c.cast("string")
    if isinstance(dt, T.ArrayType):
        et = dt.elementType
        if dt.containsNull:
            elems = F.transform(c, lambda x: F.struct(x.isNull(), canonical(x, et, where)))
        elif isinstance(et, (T.ArrayType, T.StructType, T.MapType, T.CalendarIntervalType)) or _variant(et):
            elems = F.transform(c, lambda x: canonical(x, et, where))
        else:
            elems = c
        return F.struct(F.size(c), elems)
    if isinstance(dt, T.StructType):
        names = [f.name for f in dt.fields]
        if len(set(names)) < len(names):
            if _has_map(dt):
                dup = next(n for n in names if names.count(n) > 1)
                raise InputError(f"{where} has a struct with two fields named {dup!r} and a map inside; "
                                 f"rename the fields so that rows can be told apart")
            return c  # fields cannot be read by name; hashed as Spark does (nulls skipped)
        fields = [c.getField(f.name) for f in dt.fields]
        parts = [canonical(x, f.dataType, where) for x, f in zip(fields, dt.fields)]
        return F.struct(*null_flags(fields, [f.nullable for f in dt.fields]), *parts)
    if isinstance(dt, T.MapType):
        kt, vt = dt.keyType, dt.valueType
        entries = F.transform(F.map_entries(c), lambda e: F.struct(
            canonical(e["key"], kt, where).alias("k"), e["value"].isNull().alias("n"),
            canonical(e["value"], vt, where).alias("v")))
        # keys are unique and orderable (their canonical form), so sorting by key alone is a total
        # order, whatever the values' type
        by_key = F.array_sort(entries, lambda a, b: F.when(a["k"] < b["k"], -1)
                              .when(a["k"] > b["k"], 1).otherwise(0))
        return F.struct(F.size(c), by_key)
    return c


def content_hash(df, seed: Column, *salts: Column, exclude=()) -> Column:
    """``xxhash64(seed, *salts, every column of df but exclude)``, one to one with the row's
    content: columns in canonical form, and for a row with nulls a seed mixed with the flags of
    which columns are null, of the seed's own type. A row without nulls keeps the seed, so rows
    of plain columns without nulls keep the keys Spark's own hash gives them (and so their
    splits and samples); a flag word appended instead could be taken for a column's value."""
    fields = [f for f in df.schema.fields if f.name not in exclude]
    cols = [quoted(f.name) for f in fields]
    forms = [canonical(c, f.dataType, f"column {f.name!r}") for c, f in zip(cols, fields)]
    words = null_flags(cols, [f.nullable for f in fields])
    if words:
        any_null = words[0] != 0
        for w in words[1:]:
            any_null = any_null | (w != 0)
        long_seed = isinstance(df.select(seed).schema.fields[0].dataType, T.LongType)
        mixed = F.xxhash64(seed, *words) if long_seed else F.hash(seed, *words)
        seed = F.when(any_null, mixed).otherwise(seed)
    return F.xxhash64(seed, *salts, *forms)
