"""Benchmark: partitioned SMOTE vs imbalanced-learn vs the Spark I/O floor (issue 6, `make bench`).

    python jobs/benchmark.py --output bench-out --mode overwrite [--config conf/bench.yaml]
    python jobs/benchmark.py --sizes 300k,1M --baseline-time-cap 300 --output bench-out --mode overwrite

For every size it generates the data once (reused on later runs, under --work-dir), then times,
each in its own process tree: the I/O floor (`spark-submit jobs/benchmark.py floor`), imbal-spark
(`spark-submit jobs/resample.py --method smote`) and imbalanced-learn (`python -m
imbal_spark.bench baseline`, skipped above its time/memory caps), and finally trains the same
logistic regression on every resampled output and scores one held-out test set. Writes
DIR/results.json, DIR/results.md (the README table) and DIR/logs/.

Internal steps, run by the benchmark itself through spark-submit:

    jobs/benchmark.py prepare --work-dir W --sizes ... --test-rows T ...   # the data sets
    jobs/benchmark.py floor --input IN --output OUT --label-col label       # the I/O floor
"""

import logging
import os

from imbal_spark import bench, config, datagen, io
from imbal_spark.cli import run
from imbal_spark.progress import setup_logging
from imbal_spark.session import get_spark

log = logging.getLogger("imbal_spark.bench")

DEFAULTS = {  # conf/bench.yaml holds the same values, documented
    "sizes": "300k,1M,3M,10M", "test_rows": 200_000, "n_features": 20, "informative": 2,
    "weights": [0.9, 0.1], "seed": 42, "k_neighbors": 5, "max_group_rows": 100_000, "halo": 0.6, "probe": 0.15,
    "baseline_time_cap": 1200.0, "baseline_memory_cap": 16.0, "scaling_rows": 3_000_000,
    "scaling_masters": ["local[1]", "local[2]"], "quality_train_rows": 2_000_000,
    "master": "local[*]", "keep_outputs": False,
    # Spark settings of every Spark run (measured ones and the quality models); no UI: no port
    # clashes and no UI start-up in the timings.
    "spark": {"spark.driver.memory": "4g", "spark.ui.enabled": "false"},
}
KEYS = ["output", "mode", "work_dir", "sizes", "test_rows", "n_features", "informative", "weights",
        "seed", "label_col", "k_neighbors", "max_group_rows", "halo", "probe", "baseline_time_cap", "baseline_memory_cap",
        "scaling_rows", "scaling_masters", "quality_train_rows", "master", "keep_outputs", "spark",
        "app_name", "log_level"]


def main(argv):
    if argv and argv[0] in STEPS:
        return STEPS[argv[0]](argv[1:])
    p = config.parser("benchmark", KEYS, __doc__)
    cfg = config.resolve(p, argv, required=["output"], defaults=DEFAULTS)
    setup_logging(cfg["log_level"])
    io.precheck([], cfg["output"], cfg["mode"], cfg.get("spark"))
    if not cfg["work_dir"]:
        import tempfile

        cfg["work_dir"] = os.path.join(tempfile.gettempdir(), "imbal-spark-bench")
    b = bench.Benchmark(cfg, os.path.dirname(os.path.abspath(__file__)))
    b.run()
    # Only now, with every timed run finished, does this process start a Spark session of its own.
    spark = get_spark(cfg["app_name"] or "imbal-spark benchmark (quality)", cfg["spark"])
    try:
        b.measure_quality(spark)
        results = b.finish()
        md = bench.render_markdown(results)
        with io.staged_output(spark, cfg["output"], cfg["mode"]) as out:
            io.write_json(spark, f"{out}/results.json", results)
            io.write_text(spark, f"{out}/results.md", md)
            logs = os.path.join(b.work, "logs")
            for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
                with open(os.path.join(logs, name), "rb") as f:
                    io.write_bytes(spark, f"{out}/logs/{name}", f.read())
    finally:
        spark.stop()
    print(md, flush=True)
    return 0


PREPARE_KEYS = ["work_dir", "sizes", "test_rows", "n_features", "informative", "weights", "classes",
                "seed", "spark", "app_name", "log_level"]


def prepare(argv):
    """Generate every training set (``jobs/generate.py``'s generator) and the held-out test set
    that is not already there with the same parameters."""
    p = config.parser("benchmark prepare", PREPARE_KEYS)
    cfg = config.resolve(p, argv, required=["work_dir", "sizes", "test_rows"])
    setup_logging(cfg["log_level"])
    nf, inf, cls, seed = cfg["n_features"], cfg["informative"], cfg["classes"], cfg["seed"]
    weights = datagen.check_params(1, nf, inf, cfg["weights"], cls)
    spark = get_spark(cfg["app_name"] or "imbal-spark benchmark (data)", cfg["spark"])
    try:
        todo = [("train", n) for n in bench.parse_sizes(cfg["sizes"])] + [("test", cfg["test_rows"])]
        for kind, rows in todo:
            path = os.path.join(cfg["work_dir"], "data", f"{kind}-{rows}")
            spec = {"kind": kind, "rows": rows, "n_features": nf, "informative": inf, "weights": weights,
                    "classes": cls, "seed": seed, "generator": "imbal_spark.datagen"}
            marker = os.path.join(path, "_bench_spec.json")
            if os.path.exists(marker) and bench.read_json(marker) == spec:
                log.info("%s set of %s rows: reused %s", kind, f"{rows:,}", path)
                continue
            if kind == "train":
                df = datagen.generate(spark, rows, nf, inf, weights, cls, seed)
            else:
                df = bench.holdout_frame(spark, rows, nf, inf, weights, cls, seed)
            with io.staged_output(spark, path, "overwrite") as out:
                io.write_parquet(df, out)
                io.write_json(spark, f"{out}/_bench_spec.json", spec)
            log.info("%s set of %s rows: written to %s", kind, f"{rows:,}", path)
    finally:
        spark.stop()
    return 0


FLOOR_KEYS = ["input", "output", "mode", "label_col", "id_cols", "seed", "spark", "app_name", "log_level"]


def floor(argv):
    """The I/O floor: read the input, write as many rows as SMOTE would, with no resampling
    (see imbal_spark.bench.floor_frame for exactly what is written)."""
    p = config.parser("benchmark floor", FLOOR_KEYS)
    cfg = config.resolve(p, argv, required=["input", "output"])
    setup_logging(cfg["log_level"])
    io.precheck([cfg["input"]], cfg["output"], cfg["mode"], cfg.get("spark"))
    spark = get_spark(cfg["app_name"] or "imbal-spark benchmark (floor)", cfg["spark"])
    try:
        io.check_destination(spark, cfg["output"], cfg["mode"])
        df = io.read_table(spark, cfg["input"])
        io.require_columns(df, [cfg["label_col"]], "label column")
        out_df, counts = bench.floor_frame(df, cfg["label_col"], cfg["id_cols"] or [], cfg["seed"])
        with io.staged_output(spark, cfg["output"], cfg["mode"]) as out:
            io.write_parquet(out_df, f"{out}/data")
            io.write_json(spark, f"{out}/summary.json", {"method": "floor", "counts_before": counts})
    finally:
        spark.stop()
    return 0


STEPS = {"prepare": prepare, "floor": floor}

if __name__ == "__main__":
    run(main)
