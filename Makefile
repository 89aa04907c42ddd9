# One entry point. `make run` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))

.PHONY: venv run test test-fast bench package clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: venv  ## the main job on built-in example data
	$(PY) jobs/pipeline.py --output out/example --mode overwrite

test: venv  ## the whole test suite
	$(PY) -m pytest -q -ra --durations=30 tests

bench: venv
	$(PY) jobs/benchmark.py --output bench-out --mode overwrite

clean:
	rm -rf out bench-out build dist *.egg-info

package: venv  ## dist/: the wheel, imbal_spark.zip (--py-files), imbal_spark_env.tar.gz (--archives); PACK_PYTHON_PREFIX=/usr for the nodes' Python
	$(PY) scripts/package.py

.PHONY: airflow-venv
airflow-venv:  ## .venv-airflow: Airflow 3 and the Spark provider, kept apart from .venv
	$(PYTHON) scripts/airflow_venv.py
