# Monocle developer commands. Everything runs inside .venv (created on demand).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-stamp

.PHONY: venv test lint typecheck build demo picture bench bench-quality clean

venv: $(STAMP)

$(STAMP): requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

lint: venv
	$(PY) -m ruff check .

typecheck: venv
	$(PY) tools/typecheck.py

test: venv lint typecheck
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

build: venv
	$(PY) tools/build_extension.py --split-platforms

demo: venv
	$(PY) scripts/demo.py

picture: venv
	$(PY) tools/render_readme_picture.py
	$(PY) tools/render_drawing_picture.py

bench: venv
	$(PY) bench/bench_masks.py
	$(PY) bench/bench_mesh.py
	$(PY) bench/bench_build.py
	$(PY) bench/bench_build_bound.py
	$(PY) bench/bench_batch.py
	$(PY) bench/bench_learned.py
	$(PY) bench/bench_warm.py
	$(PY) bench/bench_correct.py
	$(PY) bench/bench_drawing.py
	$(PY) bench/bench_backdrop.py
	$(PY) bench/bench_templates.py
	$(PY) tools/update_bench_docs.py

bench-quality: venv
	$(PY) bench/bench_quality.py $(if $(QUICK),--quick,)
	$(PY) bench/bench_quality.py --category $(if $(QUICK),--quick,)
	$(if $(QUICK),,$(PY) tools/update_bench_docs.py)

clean:
	rm -rf build dist out .pytest_cache .ruff_cache .mypy_cache
