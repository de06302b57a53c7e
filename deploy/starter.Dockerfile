# syntax=docker/dockerfile:1
# The starter: pulls run requests from NATS and runs them in runner containers on the Docker
# engine whose socket it is given. Build from the repository root:
#   docker build -f deploy/starter.Dockerfile --build-arg VERSION=1.2.3 -t seatable-pipeline-starter .
# Node 24 runs the TypeScript sources as they are (type stripping), so there is no build step:
# the first stage only installs the production dependencies of the starter and its packages.
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS dependencies
WORKDIR /app
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY packages/events/package.json packages/events/
COPY packages/runner/package.json packages/runner/
COPY packages/starter/package.json packages/starter/
RUN npm install --global --no-audit --no-fund \
      "pnpm@$(node -p 'require("./package.json").packageManager.split("@")[1]')" \
 && pnpm install --frozen-lockfile --prod --filter '@pipeline/starter...' \
 && rm -rf /root/.cache /root/.local/share/pnpm

FROM ${NODE_IMAGE}
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title="seatable-pipeline-starter" \
      org.opencontainers.image.description="SeaTable Python pipeline: starter (runs scripts in Docker sandboxes)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# PIPELINE_VERSION: what /healthz, pipeline_build_info{version} and the heartbeat show.
# The metrics port is on so the health check can ask /readyz; it needs PIPELINE_METRICS_TOKEN.
ENV NODE_ENV=production \
    PIPELINE_VERSION=${VERSION} \
    DOCKER_SOCKET=/var/run/docker.sock \
    PYTHON_STARTER_METRICS_PORT=9464 \
    STARTER_HTTP_HOST=0.0.0.0
WORKDIR /app
# iptables: the starter sets up the runner bridge's firewall (README, "Runner network"). The
# file capability lets the unprivileged user use NET_ADMIN for iptables alone, and only when
# the container was given it (compose: cap_add NET_ADMIN, network_mode host).
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables libcap2-bin \
 && setcap cap_net_admin+ep "$(readlink -f /usr/sbin/xtables-nft-multi)" \
 && apt-get purge -y libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
# iptables keeps its lock file here, where the unprivileged user may write.
ENV XTABLES_LOCKFILE=/tmp/xtables.lock
COPY --from=dependencies /app ./
COPY packages/events/src packages/events/src
COPY packages/runner/src packages/runner/src
COPY packages/starter/src packages/starter/src
# Unprivileged (uid 1000). It still needs the Docker socket, mounted with the socket's group
# added (compose: group_add DOCKER_GID). Whoever holds that socket controls the host's Docker
# engine: keep the starter on hosts that run nothing but runner containers.
USER node
EXPOSE 9464
# Healthy when /readyz says ready: NATS answers, the Docker engine answers, and the fleet
# bucket took its heartbeat lately (a starter the scheduler no longer sees is not healthy).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["node", "packages/starter/src/metrics/healthProbe.ts"]
# The starter finishes the runs in progress on SIGTERM; give it their timeout (compose: stop_grace_period).
STOPSIGNAL SIGTERM
# A young generation of 1 MB: a starter's garbage is output pieces, and a small nursery keeps
# its peak resident memory down (packages/starter/bench/peakMemory.bench.ts).
ENV NODE_OPTIONS="--max-semi-space-size=1"
# Two malloc arenas instead of one per thread: the output pieces are allocated outside the
# JavaScript heap, and glibc's many arenas kept ~25 MB more resident at the flood's peak.
ENV MALLOC_ARENA_MAX=2
# A fixed trim threshold: glibc otherwise raises it as output buffers come and go, and keeps
# freed memory resident (peak 145-153 MB without it, 133-137 MB with it, same bench).
ENV MALLOC_TRIM_THRESHOLD_=131072
CMD ["node", "packages/starter/src/main.ts"]
