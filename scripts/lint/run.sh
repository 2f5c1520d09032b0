#!/bin/sh
# Runs inside the lint image with the repository mounted read-only at /src.
set -o errexit -o nounset
echo "lint: ruff check"
ruff check .
echo "lint: ruff format --check"
ruff format --check .
echo "lint: hadolint"
find . -name Dockerfile -not -path './build/*' -print0 | xargs -0 hadolint
# Exceptions, each with its reason, are in .compose-lint.yml.
echo "lint: compose-lint (service hardening)"
compose-lint check --strict-config --fail-on low --no-env --no-pager compose.yaml
echo "lint: actionlint"
actionlint
