# The two commands that matter (see README.md):
#   make demo   - set up this host and run vac on the embedded demo configuration
#   make test   - set up this host (packages, virtualenv, test environment) and run every test
# Both are idempotent and must be run as root on Debian 12 (or EL9 with dnf).

PYTHON      ?= python3
VENV        ?= $(CURDIR)/.venv
VPY          = $(VENV)/bin/python
TESTENV_DIR ?= /var/tmp/vac-test-env
DEMO_ROOT   ?= /var/tmp/vac-demo
DEMO_DURATION ?=
PYTEST_ARGS ?=
export TESTENV_DIR

.PHONY: all test demo demo-clean deps venv testenv testenv-stop py39env unit bench bench-quick plot \
        rpm rpm-el9 srpm clean

all: test

deps:
	bash tools/install-deps.sh

$(VPY): setup.py
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	touch $(VPY)

venv: deps $(VPY)
	$(VPY) -m pip install -q -e '.[test]'

testenv: deps
	bash tools/testenv.sh install
	bash tools/testenv.sh start

testenv-stop:
	bash tools/testenv.sh stop

# Python 3.9 with EL9's oldest library versions (cached below $(TESTENV_DIR)/py39): the
# unit tests run there too (tests/packaging/test_python39.py) and rpm-el9 builds with it
py39env: deps
	bash tools/py39env.sh >/dev/null

test: venv testenv py39env
	VAC_REQUIRE_TESTENV=1 $(VPY) -m pytest $(PYTEST_ARGS)

unit: venv
	$(VPY) -m pytest -m 'not integration' $(PYTEST_ARGS)

# make demo [DEMO_DURATION=SECONDS]: Ctrl-C (or the duration) stops vacd; guests finish alone
# (the demo needs no Debian OS image: TESTENV_OSIMAGE=1 make demo builds it anyway)
demo: export TESTENV_OSIMAGE ?= 0
demo: venv testenv
	$(VPY) -m vacdemo.demo run --root $(DEMO_ROOT) $(if $(DEMO_DURATION),--duration $(DEMO_DURATION))

# removes the demo's domains, LVs, NAT network, netns hosts line and $(DEMO_ROOT); repeatable
demo-clean:
	[ ! -x $(VPY) ] || $(VPY) -m vacdemo.demo clean --root $(DEMO_ROOT)

# the source RPM (the release artefact), in build/rpm/SRPMS
srpm:
	bash tools/build-rpm.sh --srpm

# the source RPM and the binary RPMs for EL9 rebuilt from it (on this Debian host too:
# EL9's rpm macros from tools/rpm-el9.macros, Python 3.9), checked with rpmlint
rpm-el9: deps
	bash tools/build-rpm.sh

rpm: rpm-el9

bench: venv
	$(VPY) -m bench.run_all

bench-quick: venv
	$(VPY) -m bench.run_all --quick

clean:
	rm -rf $(VENV) build *.egg-info
