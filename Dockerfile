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
# Liveness over loopback, in the scheme the service listens with: HTTPS when BB_TLS_CERT is set.
# The certificate is not verified here: it names the public host, not 127.0.0.1, and this probe
# asks "is the process answering?", sending nothing secret. test/tls.test.ts runs this very line.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "const h=process.env.BB_TLS_CERT?require('node:https'):require('node:http');h.get({host:'127.0.0.1',port:process.env.PORT||8080,path:'/healthz',rejectUnauthorized:false,timeout:2500},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"
# SIGTERM from `docker stop` triggers the graceful shutdown in dist/main.js.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
