#!/usr/bin/env bash
# What `npm run test:chaos` runs: makes sure the services exist (as `npm test` does), then runs
# the chaos suite (scripts/chaos.ts), which prints its summary table last.
#
#   npm run test:chaos                      the short profile (a few minutes; what CI runs)
#   CHAOS_PROFILE=full npm run test:chaos   longer load, the one-minute database outage
#
# Environment (all optional): CHAOS_PROFILE (short), CHAOS_KEEP_LOGS=1 (keep the services'
# logs and print where), CHAOS_LOG_LEVEL (warn), TEST_SKIP_PROVISION=1, FUZZ_SEED, FUZZ_ROUNDS.
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
fi
exec node scripts/chaos.ts "$@"
