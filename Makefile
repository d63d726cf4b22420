# edgelab: two commands on a fresh machine, as root.
#   make conformance   the main job: Robot suites on edge-basic with the reference gateway -> results/
#   make test          unit + end-to-end + Robot suites
#   make mutants       the seeded faults: which of them the black-box suites catch
# Both run the idempotent bootstrap first (Debian packages, .venv, Open vSwitch).

DUT ?= reference

DUTS ?= reference linux ovs

N ?= 5

.PHONY: bootstrap native conformance compare soak mutants test unit e2e robot lint clean

bootstrap:
	@bash ci/bootstrap.sh

# The per-packet modules compiled with mypyc (the bootstrap does it too); EDGELAB_INTERPRETED=1 runs the sources.
native:
	@.venv/bin/python -P gateway/native.py build

conformance: bootstrap
	@bash ci/conformance.sh --dut $(DUT) --out results

# Every DUT through the same suites, then one table: results/<dut>/, results/compare/.
compare: bootstrap
	@for dut in $(DUTS); do bash ci/conformance.sh --dut $$dut --out results/$$dut || true; done
	@.venv/bin/python -m ci.report $(foreach d,$(DUTS),results/$(d)/output.xml) --write results/compare; [ $$? -lt 2 ]
	@.venv/bin/edgelab report $(foreach d,$(DUTS),results/$(d)) --out results

# The whole conformance N times: every test that failed even once (results/soak/).
soak: bootstrap
	@bash ci/soak.sh -n $(N) --dut $(DUT)

# Every seeded fault of edgelab/faults.py through the black-box suites: results/mutants/.
mutants: bootstrap
	@.venv/bin/edgelab mutants

test: bootstrap
	@bash ci/test.sh

unit: bootstrap
	@.venv/bin/python -m pytest suites/unit -q

e2e: bootstrap
	@.venv/bin/python -m pytest suites/e2e -q --dut $(DUT)

lint: bootstrap
	@.venv/bin/python -m ruff check . && .venv/bin/python -m ruff format --check . && .venv/bin/python -m mypy gateway

clean:
	@.venv/bin/python -m edgelab clean || true
	@.venv/bin/python -P gateway/native.py clean
	rm -rf results artifacts
