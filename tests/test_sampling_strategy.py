"""sampling_strategy resolution against imbalanced-learn's check_sampling_strategy (the oracle)."""

from collections import Counter

import numpy as np
import pytest
from imblearn.utils import check_sampling_strategy as imb_check

from imbal_spark.errors import ConfigError, ImbalSparkError, InputError
from imbal_spark.sampling import check_sampling_strategy, normalize_strategy

BINARY = {0: 630, 1: 70}
MULTI = {0: 500, 1: 120, 2: 40, 3: 120}
STRINGS = {"cat": 300, "dog": 45, "emu": 9}
TIED = {"a": 50, "b": 50, "c": 10, "d": 10}


def y_of(counts):
    return np.concatenate([np.full(n, k, dtype=object if isinstance(k, str) else None) for k, n in counts.items()])


def oracle(strategy, counts, kind):
    y = y_of(counts)
    if isinstance(next(iter(counts)), str):
        y = y.astype(str)
    return {(str(k) if isinstance(k, str) else int(k)): int(v) for k, v in imb_check(strategy, y, kind).items()}


CASES = [
    (s, counts, kind)
    for counts in (BINARY, MULTI, STRINGS, TIED)
    for kind in ("over-sampling", "under-sampling")
    for s in ("auto", "all", "not minority", "not majority", "minority", "majority")
]
CASES += [(r, BINARY, kind) for r in (0.2, 0.5, 1.0, 0.05, 0.11112) for kind in ("over-sampling", "under-sampling")]
CASES += [
    ({1: 630}, BINARY, "over-sampling"), ({1: 700, 0: 630}, BINARY, "over-sampling"),
    ({1: 60}, BINARY, "over-sampling"), ({0: 70}, BINARY, "under-sampling"),
    ({0: 700}, BINARY, "under-sampling"), ({2: 100}, MULTI, "over-sampling"),
    ({"dog": 300, "emu": 100}, STRINGS, "over-sampling"), ({"cat": 9}, STRINGS, "under-sampling"),
    ({0: 0, 1: 10}, BINARY, "under-sampling"), ({1: -5}, BINARY, "under-sampling"),
    ({7: 10}, BINARY, "over-sampling"), (0.5, MULTI, "over-sampling"), (1.5, BINARY, "over-sampling"),
    (0.0, BINARY, "under-sampling"), ("bogus", BINARY, "over-sampling"),
]


@pytest.mark.parametrize("strategy,counts,kind", CASES)
def test_same_result_or_error_as_imbalanced_learn(strategy, counts, kind):
    try:
        want = oracle(strategy, counts, kind)
    except ValueError:
        with pytest.raises(ImbalSparkError):
            check_sampling_strategy(strategy, counts, kind)
        return
    got = check_sampling_strategy(strategy, counts, kind)
    assert dict(got) == want
    assert list(got) == sorted(got)  # sorted by label, as imbalanced-learn returns it


def test_callable_gets_a_counter_like_y():
    def ratio(y):
        c = Counter(y)
        return {k: v * 3 for k, v in c.items() if v < 100}

    y = y_of(MULTI)
    want = {int(k): v for k, v in imb_check(ratio, y, "over-sampling").items()}
    assert dict(check_sampling_strategy(ratio, MULTI, "over-sampling")) == want


def test_errors_name_the_problem():
    with pytest.raises(ConfigError, match="cannot shrink class 1: it has 70 rows .* asks 60"):
        check_sampling_strategy({1: 60}, BINARY, "over-sampling")
    with pytest.raises(ConfigError, match="cannot grow class 0"):
        check_sampling_strategy({0: 700}, BINARY, "under-sampling")
    with pytest.raises(ConfigError, match="'minority' cannot be used with an under-sampler"):
        check_sampling_strategy("minority", BINARY, "under-sampling")
    with pytest.raises(ConfigError, match="would remove rows from the minority"):
        check_sampling_strategy(0.05, BINARY, "over-sampling")
    with pytest.raises(ConfigError, match="only for two classes, the data has 4"):
        check_sampling_strategy(0.5, MULTI, "over-sampling")
    with pytest.raises(InputError, match="class\\(es\\) 7 that are not in the data"):
        check_sampling_strategy({7: 10}, BINARY, "over-sampling")
    with pytest.raises(InputError, match="more than 1 class.*only 0"):
        check_sampling_strategy("auto", {0: 10}, "over-sampling")
    with pytest.raises(ConfigError, match="'bogus' is not known"):
        check_sampling_strategy("bogus", BINARY, "over-sampling")


def test_normalize_command_line_values():
    labels = [0, 1]
    assert normalize_strategy("not-majority", labels) == "not majority"
    assert normalize_strategy("not_minority", labels) == "not minority"
    assert normalize_strategy("0.5", labels) == 0.5
    assert normalize_strategy('{"1": 630}', labels) == {1: 630}
    assert normalize_strategy({"1.0": 630}, labels) == {1: 630}
    assert normalize_strategy({"dog": 50}, ["cat", "dog"]) == {"dog": 50}
    # a key equal to a label names that label, as the data holds it (it seeds the class's draws)
    for key in (1, 1.0, True, "1", "1.0"):
        (got,) = normalize_strategy({key: 630}, labels)
        assert got == 1 and type(got) is int, key
    (got,) = normalize_strategy({1: 5}, [0.0, 1.0])
    assert type(got) is float
    from decimal import Decimal

    dec = [Decimal("0.10"), Decimal("1.00")]  # a decimal(3,2) label column, as Spark gives it
    for key in (0.1, "0.1", "0.10"):
        assert normalize_strategy({key: 50}, dec) == {Decimal("0.10"): 50}, key
    assert normalize_strategy('{"0.1": 50}', dec) == {Decimal("0.10"): 50}
    with pytest.raises(ConfigError, match="whole number"):
        normalize_strategy({"1": 6.5}, labels)
    with pytest.raises(ConfigError, match="not valid JSON"):
        normalize_strategy("{1: ", labels)
    # a JSON-keyed dict resolves exactly like imbalanced-learn's int-keyed one
    got = check_sampling_strategy(normalize_strategy('{"1": 630}', labels), BINARY, "over-sampling")
    assert dict(got) == oracle({1: 630}, BINARY, "over-sampling")
