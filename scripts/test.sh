#!/usr/bin/env bash
# What `npm test` runs: provisions what the tests need on this machine, then runs every test
# file (unit, integration and end-to-end) with node's own runner.
#
#   npm test                     every *.test.ts under packages/*/test and test/
#   npm test -- standin claims   only the files whose path contains one of the words
#
# Environment (all optional):
#   TEST_CONCURRENCY   test files run at once              (default 2)
#   TEST_TIMEOUT_MS    limit for one test, in milliseconds (default 300000)
#   TEST_SKIP_PROVISION=1  do not check or start Docker, nats-server, MariaDB, the runner image
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
source scripts/toolchain.sh
source scripts/services.sh

if [ "${TEST_SKIP_PROVISION:-0}" != 1 ]; then
  ensure_docker_engine
  ensure_nats_binary
  ensure_mariadb
  ensure_runner_image
  # The dashboard's test drives Debian's headless Chromium.
  [ -x /usr/bin/chromium ] || apt_install chromium
fi

shopt -s globstar nullglob
test_files=()
for file in packages/*/test/**/*.test.ts test/**/*.test.ts; do
  case "$file" in */node_modules/*) continue ;; esac
  if [ $# -gt 0 ]; then
    matched=0
    for word in "$@"; do
      if [[ "$file" == *"$word"* ]]; then matched=1; fi
    done
    [ "$matched" = 1 ] || continue
  fi
  test_files+=("$file")
done
if [ ${#test_files[@]} -eq 0 ]; then
  echo "test: no test file matches ${*:-the default globs}" >&2
  exit 1
fi

mkdir -p test-output
tap_file=test-output/tests.tap
echo "test: ${#test_files[@]} files, ${TEST_CONCURRENCY:-2} at a time" >&2
status=0
# Human-readable progress on stdout, and TAP in a file for the summary printed last.
# --test-force-exit: a file that leaks a handle fails its own tests instead of hanging the run.
node --test \
  --test-concurrency="${TEST_CONCURRENCY:-2}" \
  --test-timeout="${TEST_TIMEOUT_MS:-300000}" \
  --test-force-exit \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap_file" \
  "${test_files[@]}" || status=$?

echo
grep -E '^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' "$tap_file" | tail -n 8
exit "$status"
