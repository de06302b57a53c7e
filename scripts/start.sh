#!/usr/bin/env bash
# What `npm start` runs: the whole pipeline on this machine, for trying it out.
#
# Provisions Node 24, the Docker engine, nats-server and the offline runner image, then starts
# what the environment does not point elsewhere:
#   NATS_URL unset             a project-local nats-server on 127.0.0.1:14222
#                              (PIPELINE_LOCAL_NATS_PORT), data in .run/nats
#   no database variable       a SQLite file, .run/scheduler.sqlite (PIPELINE_SQLITE_FILE);
#                              no database server is needed
#   DB_HOST unset, another DB_* or DATABASE_NAME set
#                              the local MariaDB on 127.0.0.1:3306 as root, database
#                              seatable_pipeline (created; DATABASE_NAME overrides the name)
#   SEATABLE_SERVER_URL unset  the SeaTable stand-in with the sample scripts
#   PYTHON_SCHEDULER_AUTH_TOKEN unset  a random token, kept in .run/token across restarts
# and then one scheduler (SCHEDULER_HOST:SCHEDULER_PORT, 127.0.0.1:5055) and one starter.
# Logs go to .run/logs/ (PIPELINE_RUN_DIR moves .run). Ctrl-C or SIGTERM stops everything it
# started, newest first.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
source scripts/toolchain.sh
source scripts/services.sh

# PIPELINE_RUN_DIR: where logs, the made-up token and the local NATS data go (tests use their own).
run_dir="${PIPELINE_RUN_DIR:-$repo_root/.run}"
log_dir="$run_dir/logs"
run_label="${run_dir#"$repo_root/"}"
mkdir -p "$log_dir"
say() { printf 'start: %s\n' "$*" >&2; }

children=()
child_names=()
stopping=0

# Waits up to $2 tenths of a second for pid $1 to end; fails if it is still there.
ended_within() {
  local _
  for _ in $(seq 1 "$2"); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  ! kill -0 "$1" 2>/dev/null
}

stop_children() {
  # A second Ctrl-C or SIGTERM (a terminal's and npm's both reach this script) must not cut
  # the stopping short and leave the other children running.
  trap '' INT TERM
  stopping=1
  local index pid
  for ((index = ${#children[@]} - 1; index >= 0; index--)); do
    pid="${children[$index]}"
    kill -0 "$pid" 2>/dev/null || continue
    say "stopping ${child_names[$index]} (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    ended_within "$pid" 100 && { wait "$pid" 2>/dev/null || true; continue; }
    # A starter drains its runs up to their timeout; a second SIGTERM stops it at once: it
    # removes its containers and leaves their runs to end as lost.
    say "${child_names[$index]} did not stop within 10 s; stopping it at once"
    kill -TERM "$pid" 2>/dev/null || true
    if ! ended_within "$pid" 100; then
      say "${child_names[$index]} did not stop; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}
trap stop_children EXIT
trap 'exit 0' INT TERM

# Starts "$2..." in a session of its own (so Ctrl-C reaches only this script, which then stops
# the children in order) with its output in .run/logs/$1.log.
start_child() {
  local name="$1"
  shift
  # The list of what this start started; emptied by its first child, so that a start refused
  # before it (a port in use) leaves the running one's list alone.
  [ ${#children[@]} -gt 0 ] || : >"$run_dir/pids"
  setsid "$@" >>"$log_dir/$name.log" 2>&1 </dev/null &
  children+=("$!")
  child_names+=("$name")
  echo "$name $!" >>"$run_dir/pids"
}

child_alive() { kill -0 "${children[-1]}" 2>/dev/null; }

port_in_use() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

fail_with_log() {
  say "error: $1; the last lines of $run_label/logs/$2.log:"
  tail -n 20 "$log_dir/$2.log" >&2 || true
  exit 1
}

# Waits up to $3 seconds for "$1" (a command) to succeed while the newest child lives.
wait_until() {
  local check="$1" name="$2" seconds="$3"
  for _ in $(seq 1 $((seconds * 10))); do
    if eval "$check"; then return 0; fi
    child_alive || fail_with_log "$name exited" "$name"
    sleep 0.1
  done
  fail_with_log "$name did not come up within $seconds s" "$name"
}

http_ok() {
  node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$1"
}

# 1. What every run needs on this machine.
ensure_docker_engine
ensure_nats_binary
ensure_runner_image
export PYTHON_RUNNER_IMAGE="${PYTHON_RUNNER_IMAGE:-seatable-pipeline-runner:offline}"
# A development run leaves this machine's firewall alone: scripts can reach its services.
# Production starters enforce the runner network's isolation (README, "Runner network").
export PYTHON_RUNNER_NETWORK_ISOLATION="${PYTHON_RUNNER_NETWORK_ISOLATION:-off}"
[ "$PYTHON_RUNNER_NETWORK_ISOLATION" = off ] &&
  say "runner network: NOT isolated (PYTHON_RUNNER_NETWORK_ISOLATION=off, for development): scripts can reach this machine's services"

# 2. NATS with JetStream.
if [ -z "${NATS_URL:-}" ]; then
  nats_port="${PIPELINE_LOCAL_NATS_PORT:-14222}"
  port_in_use 127.0.0.1 "$nats_port" &&
    { say "error: 127.0.0.1:$nats_port is taken (another npm start?); set NATS_URL to use a running server"; exit 1; }
  mkdir -p "$run_dir/nats/store"
  cat >"$run_dir/nats/nats.conf" <<EOF
# Written by scripts/start.sh for a project-local server; deploy/nats/nats.conf is the production one.
listen: 127.0.0.1:$nats_port
max_payload: 8MB
jetstream {
  store_dir: "$run_dir/nats/store"
}
EOF
  start_child nats "$NATS_SERVER_BIN" -c "$run_dir/nats/nats.conf"
  wait_until "port_in_use 127.0.0.1 $nats_port" nats 30
  export NATS_URL="nats://127.0.0.1:$nats_port"
  say "NATS: project-local nats-server on $NATS_URL, data in $run_label/nats"
else
  say "NATS: $NATS_URL (NATS_URL)"
fi

# 3. The read model: a SQLite file unless a MariaDB variable is set (the scheduler's own rule).
mariadb_configured=0
for name in DB_HOST DB_PORT DB_USER DB_PASSWD DB_PASSWORD DB_ROOT_USER DB_ROOT_PASSWD DATABASE_NAME DB_NAME; do
  if [ -n "${!name+set}" ] && { [ -n "${!name}" ] || [ "$name" = DB_ROOT_PASSWD ]; }; then
    mariadb_configured=1
  fi
done
if [ "$mariadb_configured" = 0 ]; then
  export PIPELINE_SQLITE_FILE="${PIPELINE_SQLITE_FILE:-$run_dir/scheduler.sqlite}"
  say "database: the SQLite file ${PIPELINE_SQLITE_FILE#"$repo_root/"} (PIPELINE_SQLITE_FILE; set DB_HOST for MariaDB)"
elif [ -z "${DB_HOST:-}" ]; then
  ensure_mariadb
  export DB_HOST=127.0.0.1 DB_PORT=3306
  export DATABASE_NAME="${DATABASE_NAME:-${DB_NAME:-seatable_pipeline}}"
  mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u root -e \
    "CREATE DATABASE IF NOT EXISTS \`$DATABASE_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  say "database: local MariaDB, root@127.0.0.1:3306, database $DATABASE_NAME"
else
  say "database: ${DB_HOST}:${DB_PORT:-3306}, database ${DATABASE_NAME:-${DB_NAME:-scheduler}} (DB_HOST)"
fi

# 4. The shared secret of SeaTable and the pipeline.
if [ -z "${PYTHON_SCHEDULER_AUTH_TOKEN:-}" ]; then
  if [ ! -s "$run_dir/token" ]; then
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$run_dir/token")
  fi
  PYTHON_SCHEDULER_AUTH_TOKEN="$(cat "$run_dir/token")"
  export PYTHON_SCHEDULER_AUTH_TOKEN
  say "token: made up and kept in $run_label/token: $PYTHON_SCHEDULER_AUTH_TOKEN"
else
  say "token: PYTHON_SCHEDULER_AUTH_TOKEN"
fi

# 5. SeaTable, or its stand-in with the sample scripts.
standin=0
if [ -z "${SEATABLE_SERVER_URL:-}" ]; then
  rm -f "$run_dir/standin.url"
  start_child standin env SEATABLE_STANDIN_URL_FILE="$run_dir/standin.url" \
    node packages/seatable-standin/src/main.ts
  wait_until "[ -s '$run_dir/standin.url' ]" standin 30
  SEATABLE_SERVER_URL="$(cat "$run_dir/standin.url")"
  export SEATABLE_SERVER_URL
  standin=1
  say "SeaTable: the stand-in on $SEATABLE_SERVER_URL"
else
  say "SeaTable: $SEATABLE_SERVER_URL (SEATABLE_SERVER_URL)"
fi

# 6. The pipeline itself.
scheduler_url="http://${SCHEDULER_HOST:-127.0.0.1}:${SCHEDULER_PORT:-5055}"
case "${SCHEDULER_HOST:-}" in 0.0.0.0 | '') scheduler_url="http://127.0.0.1:${SCHEDULER_PORT:-5055}" ;; esac
port_in_use 127.0.0.1 "${SCHEDULER_PORT:-5055}" &&
  { say "error: port ${SCHEDULER_PORT:-5055} is taken; set SCHEDULER_PORT"; exit 1; }
# Heap flags that keep the scheduler's memory down under a burst of submissions (about
# 170 MB instead of 285 MB at 8,000/s) at no cost in throughput; see README.
SCHEDULER_NODE_OPTIONS="${SCHEDULER_NODE_OPTIONS:---max-semi-space-size=4 --max-old-space-size=512}"
start_child scheduler env NODE_OPTIONS="$SCHEDULER_NODE_OPTIONS" node packages/scheduler/src/main.ts
# What the operator's `pipeline` command needs to reach the same log and database.
(
  umask 077
  for name in NATS_URL NATS_USER NATS_PASSWORD NATS_TOKEN PIPELINE_SUBJECT_PREFIX DB_HOST DB_PORT \
    DB_USER DB_PASSWD DB_PASSWORD DB_ROOT_PASSWD DATABASE_NAME DB_NAME PIPELINE_SQLITE_FILE TIME_ZONE; do
    if [ -n "${!name:-}" ]; then printf '%s=%s\n' "$name" "${!name}"; fi
  done
) >"$run_dir/env"
wait_until "http_ok '$scheduler_url/ping/'" scheduler 60
STARTER_NODE_OPTIONS="${STARTER_NODE_OPTIONS:---max-semi-space-size=1}"
# MALLOC_ARENA_MAX, MALLOC_TRIM_THRESHOLD_: as in the starter image (deploy/starter.Dockerfile).
start_child starter env NODE_OPTIONS="$STARTER_NODE_OPTIONS" MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" \
  MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-131072}" \
  node packages/starter/src/main.ts
sleep 1
child_alive || fail_with_log "the starter exited" starter

# 7. Ready.
base_uuid="$(node --input-type=module -e "import { sampleBaseUuid } from './packages/seatable-standin/src/index.ts'; process.stdout.write(sampleBaseUuid)")"
auth="Authorization: Token $PYTHON_SCHEDULER_AUTH_TOKEN"
body="{\"dtable_uuid\":\"$base_uuid\",\"script_name\":\"hello.py\",\"owner\":\"sample-user@example.invalid\",\"org_id\":-1,\"context_data\":null,\"scripts_running_limit\":-1,\"operate_from\":\"manualy\"}"
[ "$standin" = 1 ] && cat "$log_dir/standin.log" | grep -v '^{' >&2 || true
cat <<EOF

ready: the pipeline answers on $scheduler_url (logs in $run_label/logs/, Ctrl-C stops it)
submit the sample hello.py:
  id=\$(curl -s -X POST '$scheduler_url/run-script/' -H '$auth' -H 'Content-Type: application/json' -d '$body' | tr -dc 0-9); echo "script_id \$id"
poll its result:
  curl -s "$scheduler_url/run-script/\$id/?dtable_uuid=$base_uuid&script_name=hello.py" -H '$auth'
EOF
[ "$standin" = 1 ] || say "note: the sample base exists only on the stand-in; $SEATABLE_SERVER_URL must hold hello.py"

# 8. Serve until a signal, or until one of the children dies.
set +e
wait -n "${children[@]}"
status=$?
set -e
if [ "$stopping" = 0 ]; then
  for index in "${!children[@]}"; do
    kill -0 "${children[$index]}" 2>/dev/null ||
      say "${child_names[$index]} exited (status $status); see $run_label/logs/${child_names[$index]}.log"
  done
  exit 1
fi
