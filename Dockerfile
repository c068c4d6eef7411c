# syntax=docker/dockerfile:1
# Multi-stage build: compile TypeScript with dev dependencies, then ship only
# the production dependencies and dist/ on a slim Node 22 image, as a non-root user.

FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

FROM node:22-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    BB_DATA_DIR=/var/lib/bucketbridge
WORKDIR /app
COPY package.json package-lock.json ./
# embedded-postgres stays a dependency (it is the database when DATABASE_URL is
# unset); in production point DATABASE_URL at a managed PostgreSQL.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
COPY openapi ./openapi
RUN groupadd --system bucketbridge && useradd --system --gid bucketbridge --home-dir /app bucketbridge \
 && mkdir -p /var/lib/bucketbridge && chown bucketbridge:bucketbridge /var/lib/bucketbridge
USER bucketbridge
EXPOSE 8080
VOLUME ["/var/lib/bucketbridge"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM from `docker stop` triggers the graceful shutdown in dist/main.js.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
