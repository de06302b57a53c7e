#!/usr/bin/env bash
# Makes sure a Docker engine answers on /var/run/docker.sock: installs Debian's
# docker.io when the daemon is missing and starts dockerd when it is not running.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-engine: installing Debian's docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq docker.io >&2
fi
if ! docker info >/dev/null 2>&1; then
  echo "docker-engine: starting dockerd" >&2
  mkdir -p /var/log
  nohup dockerd --host unix:///var/run/docker.sock >/var/log/pipeline-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 0.5
  done
  echo "docker-engine: dockerd did not answer within 30 s; see /var/log/pipeline-dockerd.log" >&2
  exit 1
fi
