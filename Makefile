# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
TB := $(VENV)/bin/tailbench
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-installed-stamp

.PHONY: install data demo test leaderboard findings manifests clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

# The tests also need pytest and the Ray and Slurm launchers' extras; the demo does not.
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP)

data: install
	$(TB) data fetch fmnist-rot-lt

# The default benchmark: CE on Fashion-MNIST-ROT-LT under the CPU-sized K49 recipe trained 80 epochs
# (the length at which the CPU recipe shows what the paper's does; README), then its leaderboard.
demo: data
	$(TB) run --dataset fmnist-rot-lt --method ce --seed 0 --recipe fmnist-cpu --epochs 80 --out runs
	$(TB) leaderboard --results runs --out runs/leaderboard
	@echo "open runs/leaderboard/LEADERBOARD.md"

# The HTML leaderboard test opens index.html in headless Chromium: install it where we can.
test: $(TEST_STAMP)
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "could not install chromium; the HTML leaderboard test will be skipped"; \
	fi
	$(PY) -m pytest

# Rebuild the committed leaderboard from the committed run records.
leaderboard: install
	$(TB) leaderboard --results results --out leaderboard

# The README's findings block, from the same records (tests/test_findings.py checks it is current).
findings: leaderboard
	$(PY) -m tailbench.leaderboard.findings --results results --readme README.md

manifests: install
	$(PY) -m tailbench.datasets.freeze

clean:
	rm -rf runs .pytest_cache
