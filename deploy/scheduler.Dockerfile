# syntax=docker/dockerfile:1
# The scheduler: SeaTable's HTTP API, admission, claims, the projection into MariaDB.
# Build from the repository root:
#   docker build -f deploy/scheduler.Dockerfile --build-arg VERSION=1.2.3 -t seatable-pipeline-scheduler .
# Node 24 runs the TypeScript sources as they are (type stripping), so there is no build step:
# the first stage only installs the production dependencies of the scheduler and its packages.
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS dependencies
WORKDIR /app
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY packages/events/package.json packages/events/
COPY packages/scheduler/package.json packages/scheduler/
RUN npm install --global --no-audit --no-fund \
      "pnpm@$(node -p 'require("./package.json").packageManager.split("@")[1]')" \
 && pnpm install --frozen-lockfile --prod --filter '@pipeline/scheduler...' \
 && rm -rf /root/.cache /root/.local/share/pnpm

FROM ${NODE_IMAGE}
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title="seatable-pipeline-scheduler" \
      org.opencontainers.image.description="SeaTable Python pipeline: scheduler (HTTP API, claims, projection)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# PIPELINE_VERSION: what /healthz and pipeline_build_info{version} show at run time.
ENV NODE_ENV=production \
    PIPELINE_VERSION=${VERSION} \
    SCHEDULER_HOST=0.0.0.0 \
    SCHEDULER_PORT=5055
WORKDIR /app
COPY --from=dependencies /app ./
COPY packages/events/src packages/events/src
COPY packages/scheduler/src packages/scheduler/src
# The image's own unprivileged user (uid 1000); the scheduler needs no privilege.
USER node
EXPOSE 5055
# Healthy when /readyz says ready (NATS and MariaDB answer), asked with the scheduler's own
# token; `docker inspect` shows the probe's last answers.
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 \
  CMD ["node", "packages/scheduler/src/metrics/healthProbe.ts"]
STOPSIGNAL SIGTERM
# A smaller young generation and a bounded old one: about 170 MB instead of 285 MB under a
# burst of submissions (README, "The scheduler's memory").
ENV NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=512"
CMD ["node", "packages/scheduler/src/main.ts"]
