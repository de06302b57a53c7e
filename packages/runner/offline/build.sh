#!/usr/bin/env bash
# Builds the runner image without any container registry: a Debian 12 root filesystem made
# with debootstrap becomes a base image (docker import), and Dockerfile.offline installs
# Debian's builds of the original runner's libraries on top of it.
#
# The result, seatable-pipeline-runner:offline, is what tests, CI and air-gapped installs run.
# It lacks the SeaTable Python library (seatable-api is published only on PyPI): scripts that
# `import seatable_api` fail in it. Production uses packages/runner/Dockerfile instead.
#
# Idempotent: the inputs are hashed, the hash is stored as an image label, and a build whose
# hash already exists is skipped. Run as root (debootstrap and the Docker socket need it).
#
# Environment (all optional):
#   RUNNER_OFFLINE_TAG    tag of the result            (default seatable-pipeline-runner:offline)
#   RUNNER_OFFLINE_CACHE  debootstrap work directory   (default /var/cache/seatable-pipeline)
#   RUNNER_OFFLINE_FORCE  1 = rebuild even when the hash matches
set -euo pipefail

runner_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
offline_dir="$runner_dir/offline"
tag="${RUNNER_OFFLINE_TAG:-seatable-pipeline-runner:offline}"
cache_dir="${RUNNER_OFFLINE_CACHE:-/var/cache/seatable-pipeline}"
force="${RUNNER_OFFLINE_FORCE:-0}"
suite=bookworm
base_tag="seatable-pipeline-debian-base:$suite"
# Bump when the way the base is made changes, so existing bases are not reused.
base_recipe=1
hash_label=org.seatable.pipeline.builder-hash
base_hash_label=org.seatable.pipeline.base-hash
started_at=$SECONDS

say() { printf 'runner-offline: %s\n' "$*" >&2; }
fail() {
  say "error: $*"
  exit 1
}

warn_missing_seatable_api() {
  say "NOTE: this image does NOT contain the SeaTable Python library (seatable-api)."
  say "      It is published only on PyPI, which an offline build cannot reach; scripts that"
  say "      'import seatable_api' fail here. Use packages/runner/Dockerfile for production."
}

# Prints the first URI of the machine's apt sources that serves "$1" (a suite), in either the
# deb822 (*.sources) or the one-line (*.list) format. Nothing is printed when none does.
apt_uri_for_suite() {
  local wanted="$1" file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    awk -v wanted="$wanted" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " wanted " ") && uris != "") {
          split(uris, list, " "); print list[1]; found = 1; exit
        }
        types = ""; suites = ""; uris = ""
      }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "types:" { $1 = ""; types = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "uris:" { $1 = ""; uris = $0; sub(/^ +/, "", uris) }
      END { if (!found) flush() }
    ' "$file"
  done | head -n 1
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    # "deb [options] URI suite components..."
    sed -E -n 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\2 \3/p' "$file" |
      awk -v wanted="$wanted" '$2 == wanted { print $1; exit }'
  done | head -n 1
}

# The apt sources written into the image: the machine's own mirrors, for main only.
image_sources() {
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' \
    "$mirror" "$suite" "$suite"
  printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
  if [ -n "$security_mirror" ]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' \
      "$security_mirror" "$suite"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
  fi
}

# The value of label "$2" on image "$1"; empty when the image or the label is missing.
image_label() {
  docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 && return
  say "installing debootstrap with apt-get"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
}

# Makes the Debian base image unless one with the same recipe exists.
ensure_base_image() {
  local base_hash rootfs
  base_hash="$(printf '%s\n' "$base_recipe" "$suite" "$(image_sources)" | sha256sum | cut -c1-64)"
  if [ "$(image_label "$base_tag" "$base_hash_label")" = "$base_hash" ] && [ "$force" != 1 ]; then
    say "base image $base_tag is up to date"
    return
  fi

  ensure_debootstrap
  rootfs="$cache_dir/rootfs-$suite"
  mkdir -p "$cache_dir/debs"
  rm -rf "$rootfs"
  say "debootstrap --variant=minbase $suite from $mirror"
  debootstrap --variant=minbase --cache-dir="$cache_dir/debs" "$suite" "$rootfs" "$mirror" \
    >"$cache_dir/debootstrap.log" 2>&1 ||
    fail "debootstrap failed, see $cache_dir/debootstrap.log"

  rm -f "$rootfs/etc/apt/sources.list"
  image_sources >"$rootfs/etc/apt/sources.list.d/debian.sources"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log
  : >"$rootfs/etc/machine-id"

  say "importing the root filesystem as $base_tag"
  tar --numeric-owner --xattrs -C "$rootfs" -c . |
    docker import \
      --change "LABEL $base_hash_label=$base_hash" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/bash"]' \
      - "$base_tag" >/dev/null
  rm -rf "$rootfs"
}

runner_version() {
  sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$runner_dir/package.json" |
    head -n 1
}

command -v docker >/dev/null 2>&1 || fail "the docker CLI is missing"
docker info >/dev/null 2>&1 || fail "the Docker engine does not answer (see scripts/docker-engine.sh)"
[ "$(id -u)" = 0 ] || fail "run as root: debootstrap needs it"
mkdir -p "$cache_dir"
# One build at a time: test files that run in parallel may all ask for the image.
exec 9>"$cache_dir/build.lock"
flock 9

mirror="$(apt_uri_for_suite "$suite")"
[ -n "$mirror" ] || fail "no apt source for $suite found in /etc/apt: cannot pick a mirror"
security_mirror="$(apt_uri_for_suite "$suite-security")"
version="$(runner_version)"

builder_hash="$(
  {
    cat "$offline_dir/build.sh" "$offline_dir/Dockerfile.offline" \
      "$runner_dir/entrypoint/entrypoint.py" "$runner_dir/.dockerignore"
    printf '%s\n' "$version" "$(image_sources)"
  } | sha256sum | cut -c1-64
)"

if [ "$(image_label "$tag" "$hash_label")" = "$builder_hash" ] && [ "$force" != 1 ]; then
  say "$tag is up to date (builder hash ${builder_hash:0:12}), nothing to build"
  warn_missing_seatable_api
  exit 0
fi

ensure_base_image

previous_image="$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
say "building $tag on $base_tag"
# --network host: apt inside the build reaches the mirror exactly as this machine does
# (same resolver, same route), and no other address. The base's hash label is blanked so
# that the runner image is never mistaken for a base.
docker build \
  --network host \
  --force-rm \
  --file "$offline_dir/Dockerfile.offline" \
  --build-arg "BASE_IMAGE=$base_tag" \
  --build-arg "RUNNER_VERSION=$version" \
  --label "$hash_label=$builder_hash" \
  --label "$base_hash_label=" \
  --tag "$tag" \
  "$runner_dir" >"$cache_dir/docker-build.log" 2>&1 ||
  fail "docker build failed, see $cache_dir/docker-build.log"

current_image="$(docker image inspect --format '{{.Id}}' "$tag")"
if [ -n "$previous_image" ] && [ "$previous_image" != "$current_image" ]; then
  # The image this build replaced; kept if a container or another tag still uses it.
  docker image rm "$previous_image" >/dev/null 2>&1 || true
fi
say "built $tag in $((SECONDS - started_at)) s ($(docker image inspect --format '{{.Size}}' "$tag") bytes)"
warn_missing_seatable_api
