# faxflow: every target installs what it needs (system packages, .venv) first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo
SEED   ?= 20261123
COUNT  ?= 24
export OMP_THREAD_LIMIT := 1
export OPENBLAS_NUM_THREADS := 1

.PHONY: help setup sysdeps demo test model lexicon bench eval clean

help:
	@echo "make demo   - set up, generate sample scans, process them, print a summary"
	@echo "make test   - set up and run the test suite"
	@echo "make model  - rebuild the handwritten-digit model weights (needs ../shared data, installs torch)"
	@echo "make lexicon - rebuild the kana word list from Tesseract's Japanese dictionary"
	@echo "make bench  - run the speed benchmarks in bench/"

sysdeps:
	@bash scripts/install-system-deps.sh

$(STAMP): pyproject.toml Makefile
	@bash scripts/install-system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@# PP-OCRv4 recognition model for printed numbers (ocr/engines/ppocr.py): only its ONNX
	@# file is used, so none of the wheel's dependencies (they include GUI OpenCV)
	$(BIN)/python -m pip install -q --no-deps --ignore-requires-python 'rapidocr-onnxruntime==1.4.4'
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/faxflow demo $(DEMO) --count $(COUNT) --seed $(SEED)

test: $(STAMP)
	@bash scripts/install-system-deps.sh --test
	$(BIN)/python -m pytest -q -p no:cacheprovider

model: $(STAMP)
	$(BIN)/python -m pip install -q 'torch==2.13.0'
	$(BIN)/python scripts/train_digits.py --data ../shared/data/handwritten-digits/digits-train.npz --out ocr/engines/models/digits.npz

lexicon: $(STAMP)
	$(BIN)/python scripts/build_lexicon.py --out templates/data/kana.txt

bench: $(STAMP)
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_watch.py
	$(BIN)/python bench/bench_batch.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
