# One image for every tracelane service; the command picks which one runs:
#
#   docker build -t tracelane:local .
#   docker run --rm -e REDIS_URL=redis://host.docker.internal:6379 -p 3000:3000 tracelane:local
#   docker run --rm -e REDIS_URL=... -e HEALTH_PORT=8080 tracelane:local node services/factcheck-worker/dist/index.js
#
# The image holds production node_modules and each service's bundle (services/<name>/dist):
# no TypeScript sources, no dev dependencies, no pnpm. Works with BuildKit and the classic builder.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- pnpm on node ------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS pnpm
ARG PNPM_VERSION=10.34.9
ENV CI=true
RUN npm install --global --no-fund --no-audit "pnpm@${PNPM_VERSION}" && npm cache clean --force
WORKDIR /app

# ---- every package.json at its path (COPY cannot keep the tree of a glob) ----------------------
FROM pnpm AS manifests
COPY . /src
RUN mkdir -p /manifests \
 && cd /src \
 && cp package.json pnpm-lock.yaml pnpm-workspace.yaml /manifests/ \
 && if [ -f .npmrc ]; then cp .npmrc /manifests/; fi \
 && find . -mindepth 2 -maxdepth 3 -name package.json -not -path "*/node_modules/*" -exec cp --parents {} /manifests/ \;

# ---- the lockfile's packages in a store: this layer only changes with the lockfile -------------
FROM pnpm AS store
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
RUN pnpm fetch --store-dir /pnpm/store

# ---- full install (dev dependencies too) and the bundles ---------------------------------------
FROM store AS build
COPY --from=manifests /manifests/ ./
RUN pnpm install --frozen-lockfile --offline --store-dir /pnpm/store
COPY . .
# Keep only each service's dist (bundle, sourcemap, package.json, links into node_modules/.pnpm).
RUN pnpm build \
 && mkdir -p /out \
 && for d in services/*/dist; do mkdir -p "/out/$d" && cp -a "$d/." "/out/$d/"; done

# ---- production dependencies only, from the same lockfile (same node_modules/.pnpm paths) -----
# A fresh directory (not FROM store): `pnpm fetch` left every dev package in node_modules/.pnpm.
FROM pnpm AS prod-deps
COPY --from=store /pnpm/store /pnpm/store
COPY --from=manifests /manifests/ ./
RUN pnpm install --prod --frozen-lockfile --offline --store-dir /pnpm/store

# ---- runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
# Root-owned and read-only for the service user: nothing in /app is written at runtime.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /out/ ./
COPY scripts/healthcheck.mjs ./scripts/healthcheck.mjs
USER node
# api 3000, llm-simulator 4010, trace-collector 4319; stage workers serve /healthz on HEALTH_PORT.
EXPOSE 3000 4010 4319
# GET /healthz on HEALTH_PORT, else PORT, else 3000 (the api); compose sets the path per service.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["node", "scripts/healthcheck.mjs"]
CMD ["node", "services/api/dist/index.js"]
