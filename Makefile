# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install lint typecheck redis chromium browser-test-deps js-test client-types image-test haproxy sentinel redis-cluster clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/classroom serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

redis:
	@sh scripts/ensure-redis.sh

chromium:
	@sh scripts/ensure-chromium.sh

# axe-core (WCAG checks inside the browser tests), at the version package-lock.json pins.
browser-test-deps: tests/e2e/node_modules/.package-lock.json

tests/e2e/node_modules/.package-lock.json: tests/e2e/package.json tests/e2e/package-lock.json
	cd tests/e2e && npm ci --no-audit --no-fund --silent

haproxy:
	@sh scripts/ensure-haproxy.sh

sentinel:
	@sh scripts/ensure-sentinel.sh

redis-cluster:
	@sh scripts/ensure-redis-cluster.sh

# The suite runs on one pytest-xdist worker per core, at most 4 (TEST_WORKERS=0: in this
# process, one test after another). Each worker starts the Redis Cluster and Sentinel set
# for itself when one of its tests needs them, on free ports of its own.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)

test: install redis chromium browser-test-deps haproxy sentinel redis-cluster lint typecheck js-test
	$(BIN)/pytest -n $(TEST_WORKERS)
	@if [ "$(CLASSROOM_IMAGE_TEST)" = "1" ]; then $(MAKE) image-test; fi

# The container image built (on a base made with debootstrap: no registry is reachable
# here, the base is cached under build/) and run: /readyz, the pages, a WebSocket
# session, and deploy/compose.yaml. Slow the first time (a few minutes),
# so `make test` runs it only with CLASSROOM_IMAGE_TEST=1.
image-test: install redis
	sh scripts/image-test.sh

# The npm client (clients/js) under Node against a real server: its types match the
# server's AsyncAPI document, and it connects, recovers after a restart and refreshes.
js-test: install redis clients/js/node_modules/.package-lock.json
	cd clients/js && npm test

clients/js/node_modules/.package-lock.json: clients/js/package.json clients/js/package-lock.json
	cd clients/js && npm ci --no-audit --no-fund --silent

# After a change to the wire: regenerate the npm client's AsyncAPI copy and its types.
client-types: install clients/js/node_modules/.package-lock.json
	$(BIN)/classroom asyncapi > clients/js/asyncapi.json
	cd clients/js && npm run types

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis

# Side by side on this machine: our server vs python-socketio (both on Redis) vs a bare
# websockets broadcast(); prints the ratio table, writes loadtests/results/compare.json.
.PHONY: bench
bench: install redis
	$(BIN)/python -m loadtests compare --quick
