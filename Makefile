# Two entry points that set themselves up: `make demo` and `make test`.
# The virtual environment is created on first use; torch and torchvision are
# pinned in the same pip command as everything that depends on them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS) -e ".[dev,pretrained,serve,export,ensemble,tune,video]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/plait demo

# Every layer, in parallel on every core (pytest-xdist); the fast layer alone, in
# minutes: $(BIN)/python -m pytest -m "not slow".
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n auto

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench

bench: $(BIN)/.installed
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/demo.py

clean:
	rm -rf $(VENV) runs .pytest_cache
