# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
# GPU users: make TORCH_SPEC="torch==2.13.0" TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: install test test-fast test-avx2 test-plain demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

# The unit tests again with oneDNN, ATen and MKL kernels capped at AVX2 (no AVX-512, no bf16 GEMM
# in oneDNN), as on AVX2-only CPUs: kernel-dependent paths (bf16 packing, rounding) stay portable.
# The slow tests marked golden (numbers pinned on the shipped model) run here too.
# Our C kernels are built for AVX2 (x86-64-v3) too where the CPU has it, else for the host.
AVX2_MARCH := $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && echo x86-64-v3 || echo native)
test-avx2: $(STAMP)
	ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 TINYREASON_MARCH=$(AVX2_MARCH) \
		HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow or golden"

# The unit tests again with the fast CPU kernels switched off (TINYREASON_KERNELS=off): every op on
# its plain PyTorch path, the reference the kernels are tested against. Kernel-vs-reference tests
# that need the kernels skip with a reason. The slow golden tests run here too.
test-plain: $(STAMP)
	TINYREASON_KERNELS=off HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow or golden"

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) scripts/demo.py

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache runs build *.egg-info src/*.egg-info
