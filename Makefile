# Thin wrapper around CMake. The two commands a new user needs:
#   make demo   install what is missing, build (Release), run the demo on the shared dust map
#   make test   install what is missing, build, run the whole test suite with CTest
#               (make test LABELS=unit: only the tests with that CTest label, tests/README.md)
#   make sanitize  a Debug build with ASan + UBSan (build/debug-sanitized), its unit and property tests
#               (SANITIZE_TARGETS: only these targets; SANITIZE_TESTS: only tests whose names match)
#   make sanitize-quick  the same for the readers' mutation tests and the I/O unit tests only (CI)
# A CUDA LibTorch: make build TORCH_PREFIX=/path/to/libtorch/share/cmake (or python's torch).

BUILD_DIR   ?= build
BUILD_TYPE  ?= Release
TORCH_PREFIX ?=
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
DEMO_MAP    ?= ../shared/data/dust/I_1.npy
DEMO_OUT    ?= out/demo
LABELS      ?=
SANITIZE_TARGETS ?=
SANITIZE_TESTS   ?=
# The quick sanitized job: hostile inputs for every reader, and the unit tests of the readers.
QUICK_TARGETS := demix_unit_tests demix_property_tests
QUICK_TESTS   := ^(Hostile|FitsRead|FitsWrite|FitsHeader|FitsCoefficients|Npy|Io|Tables|MadnessModel)[.]

CMAKE_ARGS := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
ifneq ($(TORCH_PREFIX),)
CMAKE_ARGS += -DCMAKE_PREFIX_PATH=$(TORCH_PREFIX)
endif

.PHONY: all deps configure build test sanitize sanitize-quick demo bench install clean

all: build

deps:
	@TORCH_PREFIX="$(TORCH_PREFIX)" bash scripts/install-deps.sh

configure: deps
	@mkdir -p $(BUILD_DIR)
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_ARGS) > $(BUILD_DIR)/configure.log 2>&1 || \
	  { cat $(BUILD_DIR)/configure.log; exit 1; }
	@grep -A9 "demix .* configuration" $(BUILD_DIR)/configure.log || true

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(if $(LABELS),-L '$(LABELS)')

sanitize: deps
	cmake --preset debug-sanitized $(if $(TORCH_PREFIX),-DCMAKE_PREFIX_PATH=$(TORCH_PREFIX))
	cmake --build --preset debug-sanitized -j $(JOBS) $(if $(SANITIZE_TARGETS),--target $(SANITIZE_TARGETS))
	ctest --preset debug-sanitized -j $(JOBS) $(if $(LABELS),-L '$(LABELS)') \
	  $(if $(SANITIZE_TESTS),-R '$(SANITIZE_TESTS)')

sanitize-quick:
	$(MAKE) sanitize SANITIZE_TARGETS='$(QUICK_TARGETS)' SANITIZE_TESTS='$(QUICK_TESTS)'

demo: build
	DEMIX=$(BUILD_DIR)/demix DEMO_MAP=$(DEMO_MAP) DEMO_OUT=$(DEMO_OUT) bash scripts/demo.sh

install: build
	cmake --install $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) out
