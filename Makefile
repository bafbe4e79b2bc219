# smartmkt: `make run` and `make test` are all a user needs; both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
# The engines several replicas share (smartmkt/runtime/engines.py runs its own copies on loopback;
# the system services these packages would start are kept from starting by a policy-rc.d).
ENGINE_PACKAGES := postgresql redis-server rabbitmq-server haproxy
# (defined first: := expands it here, and an engine left out was never installed)
APT_PACKAGES := python3-venv python3-dev build-essential pkg-config libfreetype-dev libqhull-dev sqlite3 \
  espeak-ng ffmpeg sox chromium $(ENGINE_PACKAGES)
VENV := .venv
BOT_VENV := .venv-bot
RECBOLE_VENV := .venv-recbole
STAMPS := .setup-stamps
SMARTMKT := $(VENV)/bin/smartmkt
RASA := $(BOT_VENV)/bin/rasa
WHEELS := var/cache/wheels
# The stock Rasa Webchat a shop may already run (npm rasa-webchat 1.0.1, its own bundle): the
# browser tests drive it against smartmkt (tests/browser/test_stock_webchat.py).
STOCK_WEBCHAT := var/cache/npm/rasa-webchat-1.0.1
STOCK_WEBCHAT_SHA512 := Ld1zVJvTAaTrs6A5p8t70agNNrKYRyXlvqXZRgBoDvKKUXbA0jhJKECi5bdPGlaR6jsmqWtVylHS+YqIqo0x8w==
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

.PHONY: setup run cluster cluster-down test train demo lint validate story-test pytest clean

setup: $(STAMPS)/apt $(STAMPS)/venv $(STAMPS)/venv-bot $(STAMPS)/venv-recbole $(STAMPS)/npm $(WHEELS)/recbole-1.2.1-py3-none-any.whl \
  $(WHEELS)/Lifetimes-0.11.3-py3-none-any.whl $(STOCK_WEBCHAT)/lib/index.js

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  policy=/usr/sbin/policy-rc.d; kept=; \
	  if [ -e $$policy ]; then kept=$$(mktemp) && $$SUDO cp -p $$policy $$kept; fi; \
	  printf '#!/bin/sh\nexit 101\n' | $$SUDO tee $$policy >/dev/null && $$SUDO chmod 755 $$policy; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; rc=$$?; \
	  if [ -n "$$kept" ]; then $$SUDO cp -p $$kept $$policy && rm -f $$kept; else $$SUDO rm -f $$policy; fi; \
	  [ $$rc = 0 ] || exit $$rc; \
	fi
	@touch $@

# The app environment: torch 2.13.0 (CPU wheel), transformers, FAISS, SQLAlchemy 2, rasa-sdk...
$(STAMPS)/venv: pyproject.toml $(STAMPS)/apt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip==25.3
	$(VENV)/bin/pip install -q -e '.[dev]'
	$(VENV)/bin/pip install -q --no-deps openai-whisper==20250625
	@touch $@

# The bot environment: Rasa Open Source 3.6.21 on Python 3.11 (recipe in ../shared/DESIGN.md).
$(STAMPS)/venv-bot: bot/requirements.txt bot/constraints.txt bot/requirements.lock bot/mplsetup.cfg $(STAMPS)/apt
	@test -x $(BOT_VENV)/bin/python || $(PYTHON) -m venv $(BOT_VENV)
	$(BOT_VENV)/bin/pip install -q --upgrade pip==25.3
	MPLSETUPCFG=$(CURDIR)/bot/mplsetup.cfg $(BOT_VENV)/bin/pip install -q --ignore-requires-python \
	  -c bot/constraints.txt -c bot/requirements.lock -r bot/requirements.txt
	@touch $@

# The recommender bench's peers: RecBole 1.2.1 in its own environment (its quick start imports
# Ray 2.6, which needs numpy < 2; the app's has numpy 2). Only `smartmkt bench recommend` uses it.
$(STAMPS)/venv-recbole: tools/recbole/requirements.txt tools/recbole/requirements.lock $(STAMPS)/apt
	@test -x $(RECBOLE_VENV)/bin/python || $(PYTHON) -m venv $(RECBOLE_VENV)
	$(RECBOLE_VENV)/bin/pip install -q --upgrade pip==25.3
	$(RECBOLE_VENV)/bin/pip install -q -c tools/recbole/requirements.lock -r tools/recbole/requirements.txt
	@touch $@

# The web pages' browser libraries (socket.io-client, Chart.js) at the versions
# smartmkt/web/package-lock.json pins; the app serves them itself, never from a CDN. npm comes
# with the machine's Node.js, else from Debian.
$(STAMPS)/npm: smartmkt/web/package.json smartmkt/web/package-lock.json $(STAMPS)/apt
	@command -v npm >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q nodejs npm; }
	cd smartmkt/web && npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

# MovieLens-100k ships inside the recbole wheel; fetched from PyPI once and read as a zip by the
# app (the RecBole environment above installs it only for the bench's peers).
$(WHEELS)/recbole-1.2.1-py3-none-any.whl: | $(STAMPS)/venv
	@mkdir -p $(WHEELS)
	$(VENV)/bin/pip download -q --no-deps --only-binary=:all: recbole==1.2.1 -d $(WHEELS)

# Fetched from npm once, checked against the registry's sha512 and unpacked; never installed (its
# 590 dependencies are not needed: lib/index.js is a self-contained bundle).
$(STOCK_WEBCHAT)/lib/index.js: | $(STAMPS)/npm
	@mkdir -p $(STOCK_WEBCHAT) && rm -f $(STOCK_WEBCHAT).tgz
	cd $(dir $(STOCK_WEBCHAT)) && npm pack --silent rasa-webchat@1.0.1 >/dev/null
	@test "$$($(PYTHON) -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' $(STOCK_WEBCHAT).tgz)" = "$(STOCK_WEBCHAT_SHA512)" \
	  || { echo "rasa-webchat-1.0.1.tgz does not match its registry sha512" >&2; rm -f $(STOCK_WEBCHAT).tgz; exit 1; }
	tar -xzf $(STOCK_WEBCHAT).tgz -C $(STOCK_WEBCHAT) --strip-components=1 package/lib/index.js package/LICENSE
	@rm -f $(STOCK_WEBCHAT).tgz && touch $@

# CDNOW_master.txt ships inside the lifetimes wheel; same treatment.
$(WHEELS)/Lifetimes-0.11.3-py3-none-any.whl: | $(STAMPS)/venv
	@mkdir -p $(WHEELS)
	$(VENV)/bin/pip download -q --no-deps --only-binary=:all: lifetimes==0.11.3 -d $(WHEELS)

demo: setup
	$(SMARTMKT) data load-demo

train: demo
	$(SMARTMKT) train all

# The demo page's picker gets customer tokens from the app (SMARTMKT_DEMO_TOKENS); production
# leaves it off. Secrets not set in the environment are generated once into var/secrets/.
# `smartmkt run` loads the demo store and trains only what is missing; the models it has are
# served at once, and new data is trained on in the background (promoted only past its gate).
run: setup
	SMARTMKT_DEMO_TOKENS=$${SMARTMKT_DEMO_TOKENS:-true} $(SMARTMKT) run

# Several replicas of every service behind HAProxy, on PostgreSQL, Redis and RabbitMQ, in the
# background (docs/replicas.md); `make cluster-down` stops them. REPLICAS=3 for more.
cluster: setup
	$(SMARTMKT) cluster up --replicas $${REPLICAS:-2}

cluster-down: setup
	$(SMARTMKT) cluster down

validate: setup
	$(SMARTMKT) bot validate

story-test: train
	$(SMARTMKT) bot test-stories

# Store and import tests run on SQLite and on a throwaway PostgreSQL (.ci/postgres).
pytest: train
	@url=$$(bash .ci/postgres start) && \
	  SMARTMKT_TEST_POSTGRES_URL=$$url $(VENV)/bin/pytest; rc=$$?; bash .ci/postgres stop; exit $$rc

lint: setup
	$(VENV)/bin/ruff check smartmkt actions tests tools bot/run_rasa.py bot/customer_identity.py bot/redacting_store.py bot/replicas.py bot/event_brokers.py bot/client_replies.py
	$(VENV)/bin/ruff format --check smartmkt actions tests tools bot/run_rasa.py bot/customer_identity.py bot/redacting_store.py bot/replicas.py bot/event_brokers.py bot/client_replies.py
	$(VENV)/bin/mypy smartmkt actions

test: lint validate story-test pytest

clean:
	rm -rf $(VENV) $(BOT_VENV) $(RECBOLE_VENV) $(STAMPS) smartmkt/web/node_modules var models/nlu models/recommender models/rasa models/diet models/manifest.json
