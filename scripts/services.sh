#!/usr/bin/env bash
# Sourced by test.sh, start.sh and .ci/run: makes sure the services the pipeline needs on this
# machine exist, installing Debian's packages where they are missing. Each function is a no-op
# when its service is already there, so calling them again is cheap.
#
#   ensure_docker_engine   a Docker engine on /var/run/docker.sock (scripts/docker-engine.sh)
#   ensure_nats_binary     Debian's nats-server on PATH (tests and start.sh spawn their own)
#   ensure_mariadb         MariaDB answering on 127.0.0.1:3306 as root with an empty password
#   ensure_runner_image    the offline runner image (packages/runner/offline/build.sh)
set -euo pipefail

services_repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
services_apt_updated=0

services_say() { printf 'services: %s\n' "$*" >&2; }

# Debian's sbin directories hold nats-server and mariadbd; a non-login shell may lack them.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ "$services_apt_updated" = 0 ]; then
    services_say "apt-get update"
    apt-get update -qq >&2
    services_apt_updated=1
  fi
  services_say "installing $*"
  apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_docker_engine() {
  bash "$services_repo_root/scripts/docker-engine.sh"
}

ensure_nats_binary() {
  if ! command -v nats-server >/dev/null 2>&1; then apt_install nats-server; fi
  export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$(command -v nats-server)}"
}

mariadb_answers() {
  mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u root --connect-timeout=2 -e 'SELECT 1' \
    >/dev/null 2>&1
}

ensure_mariadb() {
  if command -v mariadb >/dev/null 2>&1 && mariadb_answers; then return 0; fi
  # SERVICES_FRESH_MARIADB=1: the caller installed mariadb-server just now (as .ci/run does).
  local installed_now="${SERVICES_FRESH_MARIADB:-0}"
  if [ ! -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server mariadb-client
    installed_now=1
  elif ! command -v mariadb >/dev/null 2>&1; then
    apt_install mariadb-client
  fi
  # --oknodo: nothing happens when a mariadbd is already running.
  services_say "starting mariadbd unless it runs"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  # --user: Debian's own configuration leaves the user unset, and mariadbd refuses to run as root.
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  local attempt
  for attempt in $(seq 1 60); do
    if mariadb_answers; then return 0; fi
    # A server installed just now lets root in only through the socket (unix_socket auth);
    # the tests connect over TCP as root without a password, as on the project's machines.
    if [ "$installed_now" = 1 ] && mariadb -u root -e 'SELECT 1' >/dev/null 2>&1; then
      services_say "letting root in over TCP without a password (fresh install)"
      mariadb -u root -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
      installed_now=0
      continue
    fi
    sleep 0.5
  done
  services_say "MariaDB does not answer on 127.0.0.1:3306 as root (attempt $attempt)"
  return 1
}

ensure_runner_image() {
  local builder="$services_repo_root/packages/runner/offline/build.sh"
  if [ ! -f "$builder" ]; then
    services_say "no $builder yet: runner image not built"
    return 0
  fi
  bash "$builder"
}
