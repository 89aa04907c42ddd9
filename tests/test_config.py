import pytest

from imbal_spark import config
from imbal_spark.errors import ConfigError

KEYS = ["input", "label_col", "output", "k_neighbors", "weights", "sampling_strategy", "spark", "reference"]


def resolve(argv, required=()):
    return config.resolve(config.parser("t", KEYS), argv, required=list(required))


def test_flags_override_file_and_file_overrides_defaults(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("input: from_file\nlabel_col: y\nk_neighbors: 3\nspark:\n  spark.sql.shuffle.partitions: 8\n")
    cfg = resolve(["--config", str(f), "--label-col", "target"])
    assert cfg["input"] == "from_file"
    assert cfg["label_col"] == "target"          # flag beats file
    assert cfg["k_neighbors"] == 3               # file beats default (5)
    assert cfg["spark"] == {"spark.sql.shuffle.partitions": 8}
    assert resolve([])["k_neighbors"] == 5       # built-in default


def test_cli_values_take_their_yaml_meaning():
    cfg = resolve(["--sampling-strategy", "0.5", "--weights", "0.9,0.1", "--k-neighbors", "7"])
    assert cfg["sampling_strategy"] == 0.5
    assert cfg["weights"] == [0.9, 0.1]
    assert cfg["k_neighbors"] == 7
    assert resolve(["--sampling-strategy", '{"1": 100}'])["sampling_strategy"] == {"1": 100}
    assert resolve(["--sampling-strategy", "not-majority"])["sampling_strategy"] == "not-majority"
    assert resolve(["--reference"])["reference"] is True


def test_list_flags_take_a_json_array_for_names_with_commas_or_edge_spaces():
    parse = lambda *argv: config.resolve(config.parser("t", ["features", "id_cols"]), list(argv))
    assert parse("--features", " a , b,,c ")["features"] == ["a", "b", "c"]
    cfg = parse("--features", '["amount, eur", " x ", "b.c"]', "--id-cols", ' ["id"]')
    assert cfg["features"] == ["amount, eur", " x ", "b.c"]
    assert cfg["id_cols"] == ["id"]
    # not a JSON array of strings: the comma-separated form, as before
    assert parse("--features", "[a],b")["features"] == ["[a]", "b"]
    assert parse("--features", "[1, 2]")["features"] == ["[1", "2]"]


def test_unknown_key_names_key_and_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("input: x\nk_neighbours: 5\n")
    with pytest.raises(ConfigError) as e:
        resolve(["--config", str(f)])
    assert "k_neighbours" in str(e.value) and str(f) in str(e.value)
    assert "k_neighbors" in str(e.value)  # the suggestion


def test_wrong_type_names_key_and_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("k_neighbors: five\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: key 'k_neighbors' must be an integer, got 'five'"):
        resolve(["--config", str(f)])
    f.write_text("k_neighbors: true\n")
    with pytest.raises(ConfigError, match="k_neighbors"):
        resolve(["--config", str(f)])


def test_wrong_type_on_command_line():
    with pytest.raises(ConfigError, match=r"--k-neighbors must be an integer, got 'x'"):
        resolve(["--k-neighbors", "x"])


def test_missing_required_key_names_it(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("label_col: y\n")
    with pytest.raises(ConfigError, match=r"missing required setting 'input'.*--input.*c.yaml"):
        resolve(["--config", str(f)], required=["input"])


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(["--config", str(tmp_path / "nope.yaml")])
    f = tmp_path / "broken.yaml"
    f.write_text("input: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve(["--config", str(f)])
    f.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        resolve(["--config", str(f)])


def test_unknown_flag_is_a_config_error():
    with pytest.raises(ConfigError, match="unrecognized arguments: --nope"):
        resolve(["--nope", "1"])


def test_shipped_configs_are_valid():
    from pathlib import Path

    # conf/airflow.yaml configures the DAG, not a job: the DAG checks it (tests/test_airflow.py).
    confs = sorted(p for p in (Path(__file__).parents[1] / "conf").glob("*.yaml") if p.name != "airflow.yaml")
    assert {p.name for p in confs} >= {"local.yaml", "cluster.yaml", "reference.yaml"}
    for c in confs:
        assert isinstance(config.load_file(str(c)), dict)


def test_readme_lists_every_config_key():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "scripts" / "config_keys.py"
    spec = importlib.util.spec_from_file_location("config_keys", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = mod.README.read_text()
    assert mod.render(text) == text, "README's key table is stale: run python scripts/config_keys.py"
    for name in config.SCHEMA:
        assert f"| `{name}` |" in text


def test_log_level_must_be_a_level():
    from imbal_spark.progress import setup_logging

    with pytest.raises(ConfigError, match="log_level 'LOUD' is not a level; use DEBUG, INFO, WARNING or ERROR"):
        setup_logging("LOUD")
    setup_logging("warning")  # any case


def test_missing_column_hint_names_the_flag_of_its_role():
    from imbal_spark.errors import MissingColumnError

    assert str(MissingColumnError("y", ["a"], "label column")).endswith("Pass the right name (--label-col).")
    assert str(MissingColumnError("g", ["a"], "--by column")).endswith("Pass the right name (--by).")
    assert str(MissingColumnError("f", ["a"], "feature column (in the test data)")).endswith("(--features).")
    assert str(MissingColumnError("s", ["a"], "score column")).endswith("Pass the right name.")


def test_input_and_train_test_flags_replace_the_files_other_form(tmp_path):
    """One file may drive every job: its input: must not clash with --train/--test given on the
    command line (flags beat the file), nor its train:/test: with --input."""
    keys = ["input", "train", "test", "label_col"]
    f = tmp_path / "c.yaml"
    f.write_text("input: all\nlabel_col: y\n")
    cfg = config.resolve(config.parser("t", keys), ["--config", str(f), "--train", "a", "--test", "b"])
    assert (cfg["input"], cfg["train"], cfg["test"], cfg["label_col"]) == (None, "a", "b", "y")
    f.write_text("train: a\ntest: b\n")
    cfg = config.resolve(config.parser("t", keys), ["--config", str(f), "--input", "all"])
    assert (cfg["input"], cfg["train"], cfg["test"]) == ("all", None, None)
    cfg = config.resolve(config.parser("t", keys), ["--config", str(f)])  # no flags: the file as written
    assert (cfg["input"], cfg["train"], cfg["test"]) == (None, "a", "b")
