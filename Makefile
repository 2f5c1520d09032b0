# Everyday commands. `make help` lists them; each is a thin wrapper over `docker compose`,
# so the README's plain `docker compose up` and these stay the same stack.
SHELL := /bin/bash
.DEFAULT_GOAL := help

COMPOSE ?= docker compose
TOOLS := $(COMPOSE) -f compose.yaml -f compose.test.yaml
DEV := $(COMPOSE) -f compose.yaml -f compose.dev.yaml
PROFILE ?= load
EXAMPLE ?= keep
# Prometheus' own checker, in its image: the config, the alert rules, their unit tests.
PROMTOOL := docker run --rm --network none -v "$$PWD/monitoring:/monitoring:ro" -w /monitoring/tests \
  --entrypoint promtool prom/prometheus:v2.53.3
# Files written into the source tree by a container belong to you, not root.
AS_ME := --user "$$(id -u):$$(id -g)"
# init is Python 3.11+ standard library: the host's python3 if it is one, else the image's.
PYTHON := $(shell python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  && echo python3 || echo docker run --rm $(AS_ME) -v "$$PWD:/src" -w /src python:3.13-slim-trixie python)

.PHONY: help up down logs ps build migrate migrations superuser shell test test-template lint \
  loadtest compare compare-peers bench lock clean init startapp dev deploy rollback backup backup-list restore \
  restore-drill swarm-secrets swarm-push swarm-deploy swarm-rm test-swarm

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[1m%-13s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

up: ## Start the stack in the background and wait until it is healthy (https://localhost)
	$(COMPOSE) up --detach --build --wait

down: ## Stop the stack (data volumes are kept)
	$(COMPOSE) down

logs: ## Follow the logs of every service
	$(COMPOSE) logs --follow --tail 100

ps: ## Show the services and their health
	$(COMPOSE) ps --all

build: ## Build all images
	$(COMPOSE) build

migrate: ## Apply Django migrations (the `migrate` service also runs at every start)
	$(COMPOSE) run --rm migrate

# startapp and migrations mount wsgi_app/ over the image's code: they need only the image's
# Django (`run` builds the image if there is none yet), not a rebuild for every edit.
migrations: ## Write migrations for your model changes into wsgi_app/ (makemigrations)
	$(COMPOSE) run --rm --no-deps $(AS_ME) -v "$$PWD/wsgi_app:/app" -e DJANGO_ENV=development \
	  -e DATABASE_POOL=false wsgi python manage.py makemigrations

superuser: ## Create a Django admin user (without a terminal: DJANGO_SUPERUSER_USERNAME/_PASSWORD/_EMAIL)
	COMPOSE="$(COMPOSE)" ./scripts/superuser.sh

shell: ## Open a Django shell in a wsgi container
	$(COMPOSE) exec wsgi python manage.py shell

deploy: ## Build images tagged with the git commit (or IMAGE_TAG), migrate, replace containers one by one
	./scripts/deploy.sh

rollback: ## Deploy the previous release's images again, the same way
	./scripts/deploy.sh rollback

backup: ## Back up Postgres now (pg_dump, sha256, row counts) into the backups volume
	./scripts/backup.sh now

backup-list: ## List the backups, newest first
	./scripts/backup.sh list

restore: ## Restore BACKUP=<name> into the running stack (stops writers, restores, migrates, restarts)
	./scripts/backup.sh restore "$(BACKUP)"

restore-drill: ## Restore the newest backup into a throwaway Postgres and check it (Django, row counts)
	./scripts/backup.sh drill

swarm-secrets: ## Swarm (DOCKER_HOST = a manager): create the kit's secrets there if absent, never printed
	./deploy/swarm/swarm.sh secrets

swarm-push: ## Swarm: build the images, tag them IMAGE_TAG (default: the git commit), push to REGISTRY
	./deploy/swarm/swarm.sh push

swarm-deploy: ## Swarm: data stores, the release step (migrate, static files), then the apps rolling
	./deploy/swarm/swarm.sh deploy

swarm-rm: ## Swarm: remove the stack (its volumes and secrets stay)
	./deploy/swarm/swarm.sh rm

test-swarm: ## The kit on a 3-node swarm-lab swarm (SWARM_LAB=path/to/swarm-lab): deploy, rolling update, node failure
	./deploy/swarm/test.sh

init: ## Make the kit your project: make init NAME="Acme Notes" [EXAMPLE=keep|drop]
	@test -n "$(NAME)" || { echo 'init: give the name: make init NAME="Acme Notes" [EXAMPLE=keep|drop]' >&2; exit 2; }
	$(PYTHON) scripts/init.py --name "$(NAME)" --example "$(EXAMPLE)"

startapp: ## A new Django app in wsgi_app/, installed: make startapp APP=notes
	@test -n "$(APP)" || { echo 'startapp: give the name: make startapp APP=notes' >&2; exit 2; }
	$(COMPOSE) run --rm --no-deps $(AS_ME) -v "$$PWD/wsgi_app:/src" -w /src \
	  -v "$$PWD/scripts/startapp.py:/startapp.py:ro" -e DJANGO_SETTINGS_MODULE= \
	  wsgi python /startapp.py "$(APP)"

dev: ## Development stack: DEBUG, reload on code change through the same nginx (Ctrl-C stops watching)
	$(DEV) up --detach --build --wait
	$(DEV) watch --no-up

test: lint ## Lint, then build and test a separate stack end to end; ends with one summary line
	./scripts/test.sh

test-template: ## The kit as a template: init, startapp, copier copy/update, the dev loop (make test runs it)
	./scripts/test-template.sh

lint: ## ruff (lint + format), hadolint, compose-lint, actionlint, nginx -t, compose config, promtool
	$(COMPOSE) config --quiet
	$(TOOLS) config --quiet
	$(TOOLS) --profile tools build lint
	$(TOOLS) --profile tools run --rm lint
	./scripts/nginx-test.sh
	$(PROMTOOL) check config /monitoring/prometheus.yml
	$(PROMTOOL) check rules /monitoring/rules/kit.yml
	$(PROMTOOL) test rules kit.test.yml

loadtest: ## Run a Locust profile headless against the running stack (PROFILE=smoke|load|stress|soak)
	./loadtest/run.sh $(PROFILE)

compare: ## WSGI vs ASGI at rising concurrency: CSV, table and chart in loadtest/reports/compare-*/
	./loadtest/compare.sh

compare-peers: ## The kit's Gunicorn/Uvicorn configurations vs the peers' commands, same app (bench step peers)
	./loadtest/bench.sh peers

bench: ## Every benchmark, bounded, on a stack of its own: summary in loadtest/reports/bench-*/ and docs/benchmarks.md
	./loadtest/bench.sh

lock: ## Refresh the uv lock files of every Python part (inside the Python base image)
	for d in wsgi_app asgi_app tests loadtest; do \
	  docker run --rm -v "$$PWD/$$d":/src -w /src python:3.13-slim-trixie \
	    sh -c 'pip install -q uv==0.13.8 && uv lock' || exit 1; \
	done

clean: ## Remove the stack with its volumes (database, Redis, secrets, certificate) and built images
	$(COMPOSE) down --volumes --remove-orphans --rmi local
	rm -rf build loadtest/reports .deploy
