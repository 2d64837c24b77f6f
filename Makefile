# The two entry points: `make run` starts the platform, `make test` runs every test.
# Both set up whatever is missing first, and are quiet when everything is in place.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
DEB_PACKAGES := iproute2 nftables nginx-light busybox conntrack curl \
	libnginx-mod-http-lua lua-resty-core lua-cjson luajit2 libnginx-mod-stream \
	libnginx-mod-http-headers-more-filter libnginx-mod-http-modsecurity modsecurity-crs
ARGS ?=

.PHONY: run test setup lint unit integration e2e bench bench-dns clean

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(VENV)/bin/python -c 'import netplane, aiohttp, kubernetes_validate' 
	@touch $(STAMP)

setup: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && ! { command -v nft && command -v nginx && command -v busybox && command -v conntrack && command -v curl \
			&& command -v luajit && test -f /usr/lib/nginx/modules/ngx_http_lua_module.so \
			&& test -f /usr/share/lua/5.1/resty/core.lua && ls /usr/lib/*/lua/5.1/cjson.so; } >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES) >/dev/null; \
	fi

# As root `up` builds the real cluster; --host-access links this host to the fabric so nodes and
# pods are reachable from it (as non-root, `up` needs --no-dataplane).
run: setup
	$(VENV)/bin/netplane up $$([ "$$(id -u)" = 0 ] && echo --host-access) $(ARGS)

lint: setup
	$(VENV)/bin/ruff check netplane tests bench
	$(VENV)/bin/mypy

test: setup lint
	$(VENV)/bin/pytest -q -p no:cacheprovider tests

unit: setup
	$(VENV)/bin/pytest -q -m unit tests

integration: setup
	$(VENV)/bin/pytest -q -m integration tests

e2e: setup
	$(VENV)/bin/pytest -q -m e2e tests

bench: setup
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || true
	$(VENV)/bin/python -m bench.api $(ARGS)

bench-dns: setup
	@command -v dnsperf >/dev/null 2>&1 && command -v unbound >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq dnsperf unbound >/dev/null; } || true
	$(VENV)/bin/python -m bench.dns $(ARGS)

clean:
	rm -rf $(VENV) .netplane
