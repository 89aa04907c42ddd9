"""Job configuration: a YAML file plus command-line flags that override it.

One config file may drive every job of a pipeline (distribution, resample, compare), so keys
are checked against the project-wide schema below: a typo is an error naming the key and the
file, while a key meant for another job of the same pipeline is accepted and ignored.
Precedence: built-in default < config file < command-line flag.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import Any, Callable

import yaml

from .errors import ConfigError


@dataclass(frozen=True)
class Key:
    name: str
    type: Any  # a Python type, a tuple of types, or a callable checker
    help: str = ""
    default: Any = None


def _strategy(v):
    if isinstance(v, (str, float, int, dict)) and not isinstance(v, bool):
        return v
    raise TypeError("a strategy name, a float or a mapping")


def _str_list(v):
    if isinstance(v, str):
        # A JSON array ('["amount, eur", " x"]') names columns holding commas or edge spaces,
        # which the comma-separated form splits and strips; anything else is that form.
        if v.lstrip().startswith("["):
            try:
                items = json.loads(v)
            except json.JSONDecodeError:
                items = None
            if isinstance(items, list) and all(isinstance(s, str) for s in items):
                return items
        return [s.strip() for s in v.split(",") if s.strip()]
    if isinstance(v, list) and all(isinstance(s, str) for s in v):
        return v
    raise TypeError("a list of strings, a comma-separated string or a JSON array of strings")


def _float_list(v):
    if isinstance(v, str):
        try:
            return [float(s) for s in v.split(",") if s.strip()]
        except ValueError:
            raise TypeError("a list of numbers or a comma-separated string") from None
    if isinstance(v, list) and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in v):
        return [float(s) for s in v]
    raise TypeError("a list of numbers or a comma-separated string")


def _mapping(v):
    if isinstance(v, dict):
        return v
    if isinstance(v, str):
        try:
            d = json.loads(v)
        except json.JSONDecodeError:
            raise TypeError("a mapping (YAML mapping or JSON object)") from None
        if isinstance(d, dict):
            return d
    raise TypeError("a mapping (YAML mapping or JSON object)")


#: Every key any job accepts, with its type. Jobs pick the ones they use.
SCHEMA: dict[str, Key] = {k.name: k for k in [
    # input / output
    Key("input", str, "input data (Parquet directory/file or CSV)"),
    Key("input_format", str, "parquet or csv; default: from the extension"),
    Key("train", str, "ready-made training set"),
    Key("test", str, "ready-made test set"),
    Key("output", str, "output directory"),
    Key("mode", str, "error (default) or overwrite", "error"),
    Key("partition_by", _str_list, "columns to partition the Parquet output by"),
    Key("label_col", str, "label column", "label"),
    Key("by", str, "group the distribution by this column"),
    Key("features", _str_list, "feature columns (default: numeric columns but label/id/weight)"),
    Key("id_cols", _str_list, "id-like columns never used as features"),
    Key("weight_col", str, "name of the weight column", "weight"),
    # generator
    Key("rows", int, "rows to generate"),
    Key("n_features", int, "number of features to generate", 20),
    Key("informative", int, "informative features", 2),
    Key("weights", _float_list, "class proportions, summing to 1"),
    Key("classes", int, "number of classes", 2),
    Key("seed", int, "random seed", 42),
    Key("partitions", int, "partitions of generated data"),
    Key("reference", bool, "write the reference data set of REFERENCE.md", False),
    # resampling
    Key("method", str, "smote, random_over or random_under", "smote"),
    Key("sampling_strategy", _strategy, "imbalanced-learn sampling_strategy", "auto"),
    Key("k_neighbors", int, "SMOTE neighbours", 5),
    Key("max_group_rows", int, "most rows in one SMOTE k-NN index (one group and its halo)", 100_000),
    Key("recall_sample", int, "rows sampled to measure neighbour recall", 200),
    Key("halo", float, "share (0 to 0.9) of a SMOTE group's k-NN index given to neighbouring groups' rows", 0.6),
    Key("probe", float, "share (above 0, at most 1) of a split class's SMOTE k-NN index each row searches "
        "(its nearest cells; 1: all of it)", 0.15),
    # training / comparison
    Key("model", str, "MLlib classifier", "logistic_regression"),
    Key("model_params", _mapping, "classifier parameters"),
    Key("strategies", _str_list, "strategies to compare"),
    Key("class_weight", (str, dict), "balanced or a {label: weight} mapping"),
    Key("test_size", float, "held-out fraction", 0.3),
    Key("validation_size", float, "validation fraction for the threshold", 0.0),
    Key("threshold_recall", float, "pick the threshold reaching this recall"),
    Key("scale", bool, "standardise features before training", False),
    Key("categorical", _str_list, "categorical columns to index and one-hot encode"),
    # session
    Key("spark", _mapping, "extra Spark settings"),
    Key("app_name", str, "Spark application name"),
    Key("log_level", str, "INFO, WARNING, ...", "INFO"),
    Key("order_col", str, "column giving the row order SMOTE draws in (imbalanced-learn parity)"),
    Key("strategy", str, "one training strategy (train job): none, class_weight, smote, ...", "none"),
    Key("sizes", (str, int, list), "benchmark: row counts, e.g. 300k,1M,3M,10M"),
    Key("test_rows", int, "benchmark: rows of the held-out test set"),
    Key("baseline_time_cap", float, "benchmark: seconds imbalanced-learn may take at one size (0: no cap)"),
    Key("baseline_memory_cap", float, "benchmark: GiB imbalanced-learn may use (0: no cap)"),
    Key("scaling_rows", int, "benchmark: rows of the cores comparison (0: skip it)"),
    Key("scaling_masters", _str_list, "benchmark: Spark masters compared, e.g. local[1],local[2]"),
    Key("quality_train_rows", int, "benchmark: most rows a quality model trains on (a sample above)"),
    Key("work_dir", str, "benchmark: where generated data, run outputs and logs go"),
    Key("master", str, "benchmark: Spark master of the measured runs (spark-submit --master)"),
    Key("keep_outputs", bool, "benchmark: keep the resampled outputs after measuring them"),
]}


def _check_type(key: Key, value, source: str):
    t = key.type
    if value is None:
        return None
    if isinstance(t, type) or isinstance(t, tuple):
        types = t if isinstance(t, tuple) else (t,)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, bool) and bool not in types:
            raise ConfigError(f"{source}: key {key.name!r} must be {_tname(types)}, got {value!r}")
        if not isinstance(value, types):
            raise ConfigError(f"{source}: key {key.name!r} must be {_tname(types)}, got {value!r}")
        return value
    try:
        return t(value)
    except TypeError as e:
        raise ConfigError(f"{source}: key {key.name!r} must be {e}, got {value!r}") from None


def _tname(types):
    return " or ".join({int: "an integer", float: "a number", str: "a string", bool: "true/false",
                        dict: "a mapping", list: "a list"}.get(t, t.__name__) for t in types)


def _shipped_file(name: str) -> str | None:
    """The local copy of a config shipped with ``spark-submit --files``, found by its name.

    YARN and Kubernetes cluster mode put --files in the driver's working directory, so the
    name resolves as it is; in client mode (standalone, the only mode for Python apps there)
    the driver runs in the submitter's directory, so the name is looked up in ``spark.files``.
    """
    if os.sep in name or not os.environ.get("PYSPARK_GATEWAY_PORT"):
        return None
    from urllib.parse import unquote, urlsplit

    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # attach to spark-submit's JVM to read its conf
    for uri in (SparkConf().get("spark.files") or "").split(","):
        u = urlsplit(uri.strip())
        local = unquote(u.path)
        if (u.fragment or os.path.basename(local)) == name and u.scheme in ("", "file", "local") \
                and os.path.isfile(local):
            return local
    return None


def load_file(path: str) -> dict:
    found = path if os.path.exists(path) else _shipped_file(path)
    if found is None:
        raise ConfigError(f"config file {path!r} does not exist; pass --config with an existing YAML file")
    try:
        with open(found) as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path!r} must hold a mapping of keys, got {type(data).__name__}")
    out = {}
    for k, v in data.items():
        name = str(k).replace("-", "_")
        if name not in SCHEMA:
            close = [s for s in SCHEMA if s.startswith(name[:3])]
            hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
            raise ConfigError(f"{path}: unknown key {k!r}{hint}; known keys: {', '.join(sorted(SCHEMA))}")
        out[name] = _check_type(SCHEMA[name], v, path)
    return out


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are ConfigErrors (one line, exit 2) instead of SystemExit."""

    def error(self, message):
        raise ConfigError(f"{self.prog}: {message}")


def parser(prog: str, keys: list[str], description: str = "") -> ArgumentParser:
    """An argument parser with ``--config`` and one ``--flag`` per key (dashes for underscores).

    Flags default to "not given" so that the config file's value shows through.
    """
    p = ArgumentParser(prog=prog, description=description, argument_default=argparse.SUPPRESS)
    p.add_argument("--config", help="YAML config file; flags override its keys")
    for name in keys:
        key = SCHEMA[name]
        flag = "--" + name.replace("_", "-")
        if key.type is bool:
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=key.help)
        elif key.type is _str_list:
            p.add_argument(flag, dest=name, help=key.help + " (comma-separated, or a JSON array of names)",
                           metavar=name.upper())
        else:
            p.add_argument(flag, dest=name, help=key.help, metavar=name.upper())
    return p


#: Keys that say the same thing two ways: flags of one form override a config file's other form
#: (a shared file's ``input:`` and ``--train``/``--test`` on the command line).
ALTERNATIVES = [({"input"}, {"train", "test"})]


def resolve(p: ArgumentParser, argv: list[str] | None, required: list[str] = (),
            defaults: dict | None = None) -> dict:
    """Parse flags, merge with the config file and defaults, check types and required keys."""
    ns = vars(p.parse_args(argv))
    cfg_path = ns.pop("config", None)
    file_vals = load_file(cfg_path) if cfg_path else {}
    cli_vals = {}
    for name, raw in ns.items():
        key = SCHEMA[name]
        value = raw
        if isinstance(raw, str):
            value = _parse_cli(key, raw)
        cli_vals[name] = _check_type(key, value, f"--{name.replace('_', '-')}")
    for one, other in ALTERNATIVES:  # a flag of one form replaces the file's other form
        if one & cli_vals.keys():
            file_vals = {k: v for k, v in file_vals.items() if k not in other}
        if other & cli_vals.keys():
            file_vals = {k: v for k, v in file_vals.items() if k not in one}
    merged = {name: SCHEMA[name].default for name in SCHEMA}
    merged.update(defaults or {})
    merged.update(file_vals)
    merged.update(cli_vals)
    merged["config"] = cfg_path
    for name in required:
        if merged.get(name) is None:
            where = f" or as key {name!r} in {cfg_path}" if cfg_path else " or in a --config file"
            raise ConfigError(f"missing required setting {name!r}: give --{name.replace('_', '-')}{where}")
    return merged


def _parse_cli(key: Key, raw: str):
    """Command-line strings take the YAML meaning ('0.5' is a float, '{...}' a mapping)."""
    t = key.type
    if t is str:
        return raw
    if t is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"--{key.name.replace('_', '-')} must be an integer, got {raw!r}") from None
    if t is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"--{key.name.replace('_', '-')} must be a number, got {raw!r}") from None
    if t in (_str_list, _float_list):
        return raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
