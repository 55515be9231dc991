# The terminal agent as a container: `docker build -t outpost-agent .`, then
#   docker run -d -v outpost-agent:/var/lib/outpost-agent \
#     -e OUTPOST_CONTROL_PLANE_URL=https://CONTROL-PLANE -e OUTPOST_ENROLLMENT_TOKEN=TOKEN \
#     outpost-agent
# The token is needed on the first start only; the enrollment stays in the volume.

# ---- build: dependencies (better-sqlite3 compiles here), TypeScript, then prod deps only ----
FROM node:20-bookworm-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
# Everything else (.dockerignore keeps out node_modules, dist and data).
COPY . .
RUN npm run build && npm prune --omit=dev

# ---- runtime: node, production node_modules and the compiled code, as a non-root user ----
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    OUTPOST_AGENT_DATA_DIR=/var/lib/outpost-agent
RUN groupadd --system outpost-agent \
  && useradd --system --gid outpost-agent --home-dir /var/lib/outpost-agent --no-create-home \
     --shell /usr/sbin/nologin outpost-agent \
  && install -d -m 0700 -o outpost-agent -g outpost-agent /var/lib/outpost-agent \
  && printf '#!/bin/sh\nexec node /app/dist/agent/cli.js "$@"\n' > /usr/local/bin/terminal-agent \
  && chmod 0755 /usr/local/bin/terminal-agent
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY docker/entrypoint.sh /usr/local/bin/outpost-entrypoint
USER outpost-agent
VOLUME /var/lib/outpost-agent
# `run` lets running jobs finish on SIGTERM; give `docker stop` time for that (-t 60).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/outpost-entrypoint"]
