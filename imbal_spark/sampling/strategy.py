"""``sampling_strategy`` resolution with imbalanced-learn's exact semantics, on class counts.

imbalanced-learn's ``check_sampling_strategy`` takes the label array ``y``; on Spark the driver
only ever holds the per-class counts, so these functions take ``{label: count}`` (sorted by
label, as ``numpy.unique`` would sort them) and give the same answer: for over-samplers the
number of rows to *add* per class, for under-samplers the number of rows to *keep*.

A callable strategy receives a ``collections.Counter`` of the labels in place of ``y``, so the
idiomatic imbalanced-learn callable (``def f(y): c = Counter(y) ...``) works unchanged.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from numbers import Real

from ..distribution import label_sort_key
from ..errors import ConfigError, InputError

OVER = "over-sampling"
UNDER = "under-sampling"
SAMPLING_TYPES = (OVER, UNDER)
NAMES = ("minority", "majority", "not minority", "not majority", "all", "auto")


def _sorted(d):
    return OrderedDict(sorted(d.items(), key=lambda kv: label_sort_key(kv[0])))


def _majority(counts):
    # max() keeps the first maximum in label order, exactly like imbalanced-learn on np.unique
    return max(counts, key=counts.get)


def _minority(counts):
    return min(counts, key=counts.get)


def _all(counts, kind):
    if kind == OVER:
        top = max(counts.values())
        return {k: top - v for k, v in counts.items()}
    low = min(counts.values())
    return {k: low for k in counts}


def _only_majority(counts, kind):
    if kind == OVER:
        raise ConfigError(
            "sampling_strategy 'majority' cannot be used with an over-sampler "
            "(it would add rows to the largest class); use 'auto', 'minority' or 'not majority'")
    maj, low = _majority(counts), min(counts.values())
    return {maj: low}


def _not_majority(counts, kind):
    maj = _majority(counts)
    if kind == OVER:
        top = counts[maj]
        return {k: top - v for k, v in counts.items() if k != maj}
    low = min(counts.values())
    return {k: low for k in counts if k != maj}


def _not_minority(counts, kind):
    mino = _minority(counts)
    if kind == OVER:
        top = max(counts.values())
        return {k: top - v for k, v in counts.items() if k != mino}
    low = counts[mino]
    return {k: low for k in counts if k != mino}


def _only_minority(counts, kind):
    if kind == UNDER:
        raise ConfigError(
            "sampling_strategy 'minority' cannot be used with an under-sampler "
            "(it would remove rows from the smallest class); use 'auto', 'majority' or 'not minority'")
    mino = _minority(counts)
    return {mino: max(counts.values()) - counts[mino]}


def _auto(counts, kind):
    return _not_majority(counts, kind) if kind == OVER else _not_minority(counts, kind)


_BY_NAME = {"minority": _only_minority, "majority": _only_majority, "not minority": _not_minority,
            "not majority": _not_majority, "all": _all, "auto": _auto}


def _from_dict(strategy, counts, kind):
    unknown = [k for k in strategy if k not in counts]
    if unknown:
        raise InputError(
            f"sampling_strategy names class(es) {', '.join(map(repr, unknown))} that are not in the "
            f"data; present classes: {', '.join(map(repr, counts))}")
    neg = {k: v for k, v in strategy.items() if v < 0}
    if neg:
        raise ConfigError(f"sampling_strategy asks a negative number of rows: {neg}; give counts >= 0")
    out = {}
    for k, n in strategy.items():
        have = counts[k]
        if kind == OVER:
            if n < have:
                raise ConfigError(
                    f"an over-sampler cannot shrink class {k!r}: it has {have} rows and "
                    f"sampling_strategy asks {n}; give at least {have} or use an under-sampler")
            out[k] = n - have
        else:
            if n > have:
                raise ConfigError(
                    f"an under-sampler cannot grow class {k!r}: it has {have} rows and "
                    f"sampling_strategy asks {n}; give at most {have} or use an over-sampler")
            out[k] = n
    return out


def _from_float(ratio, counts, kind):
    if len(counts) != 2:
        raise ConfigError(
            f"a float sampling_strategy ({ratio}) works only for two classes, the data has "
            f"{len(counts)}; use a mapping {{class: rows}} for multi-class data")
    if kind == OVER:
        maj = _majority(counts)
        top = counts[maj]
        out = {k: int(top * ratio - v) for k, v in counts.items() if k != maj}
        if any(n <= 0 for n in out.values()):
            raise ConfigError(
                f"sampling_strategy {ratio} would remove rows from the minority class "
                f"(counts {dict(counts)}); an over-sampler needs a ratio above the current "
                f"minority/majority ratio {min(counts.values()) / top:.4g}")
        return out
    mino = _minority(counts)
    low = counts[mino]
    out = {k: int(low / ratio) for k in counts if k != mino}
    if any(n > counts[k] for k, n in out.items()):
        raise ConfigError(
            f"sampling_strategy {ratio} would add rows to the majority class "
            f"(counts {dict(counts)}); an under-sampler needs a ratio above the current "
            f"minority/majority ratio {low / max(counts.values()):.4g}")
    return out


def check_sampling_strategy(sampling_strategy, counts: dict, sampling_type: str) -> OrderedDict:
    """imbalanced-learn's ``check_sampling_strategy`` on ``{label: count}``.

    Returns an OrderedDict sorted by label: rows to add per class (over-sampling) or rows to
    keep per class (under-sampling). Raises :class:`ConfigError` / :class:`InputError`
    (both ``ValueError``\\ s, as imbalanced-learn raises) with the offending value quoted.
    """
    if sampling_type not in SAMPLING_TYPES:
        raise ConfigError(f"sampling_type must be one of {SAMPLING_TYPES}, got {sampling_type!r}")
    counts = _sorted({k: int(v) for k, v in counts.items() if v})
    if len(counts) <= 1:
        only = f" (only {next(iter(counts))!r})" if counts else ""
        raise InputError(
            f"the label needs more than 1 class to resample, got {len(counts)}{only}; "
            f"check --label-col and the input")
    s = sampling_strategy
    if isinstance(s, str):
        if s not in _BY_NAME:
            raise ConfigError(
                f"sampling_strategy {s!r} is not known; use one of {', '.join(NAMES)}, "
                f"a float in (0, 1] or a mapping {{class: rows}}")
        return _sorted(_BY_NAME[s](counts, sampling_type))
    if isinstance(s, dict):
        return _sorted(_from_dict(s, counts, sampling_type))
    if isinstance(s, (list, tuple)):
        raise ConfigError("sampling_strategy cannot be a list for over- or under-samplers; "
                          "give a name, a float or a mapping {class: rows}")
    if isinstance(s, Real) and not isinstance(s, bool):
        if s <= 0 or s > 1:
            raise ConfigError(f"a float sampling_strategy must be in (0, 1], got {s}")
        return _sorted(_from_float(float(s), counts, sampling_type))
    if callable(s):
        target = s(Counter(counts))
        if not isinstance(target, dict):
            raise ConfigError(f"a callable sampling_strategy must return a mapping {{class: rows}}, "
                              f"got {type(target).__name__}")
        return _sorted(_from_dict(target, counts, sampling_type))
    raise ConfigError(f"sampling_strategy {s!r} is not a name, a float, a mapping or a callable")


def normalize_strategy(value, labels):
    """Turn a config/command-line value into what :func:`check_sampling_strategy` takes.

    ``not-majority``/``not_majority`` mean ``not majority``; ``"0.5"`` is a float; a JSON
    object is a mapping. Mapping keys are matched to the label type, so ``{"1": 630}`` from
    JSON means class ``1`` of an integer label.
    """
    if isinstance(value, str):
        v = value.strip()
        name = v.replace("-", " ").replace("_", " ").lower()
        if name in _BY_NAME:
            return name
        try:
            return float(v)
        except ValueError:
            pass
        if v.startswith("{"):
            try:
                value = json.loads(v)
            except json.JSONDecodeError:
                raise ConfigError(f"sampling_strategy {value!r} is not valid JSON") from None
        else:
            return v  # check_sampling_strategy names it as unknown
    if isinstance(value, dict):
        return {_match_label(k, labels): _count(k, n) for k, n in value.items()}
    return value


def _count(key, n):
    if isinstance(n, bool) or not isinstance(n, (int, float)) or int(n) != n:
        raise ConfigError(f"sampling_strategy for class {key!r} must be a whole number of rows, got {n!r}")
    return int(n)


def _match_label(key, labels):
    """The label a dict key names, as the data holds it (1.0 or True for an integer label 1 give
    1: the label, not the key, seeds the class's draws and builds its Spark literal)."""
    equal = [lab for lab in labels if lab == key]
    if len(equal) == 1:
        return equal[0]
    from decimal import Decimal, InvalidOperation

    if any(isinstance(lab, Decimal) for lab in labels):  # a decimal label column: 0.1 names Decimal("0.10")
        try:
            d = Decimal(str(key).strip())
            equal = [lab for lab in labels if isinstance(lab, Decimal) and lab == d]
            if len(equal) == 1:
                return equal[0]
        except (InvalidOperation, ValueError):
            pass
    matches = [lab for lab in labels if str(lab) == str(key)]
    if len(matches) == 1:
        return matches[0]
    try:  # "1.0" for an integer label 1, "1" for a double label 1.0
        f = float(key)
        matches = [lab for lab in labels
                   if isinstance(lab, (int, float)) and not isinstance(lab, bool) and float(lab) == f]
        if len(matches) == 1:
            return matches[0]
    except (TypeError, ValueError):
        pass
    return key  # check_sampling_strategy reports it as absent
