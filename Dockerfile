# syntax=docker/dockerfile:1

# --- build: all dependencies, compile TypeScript, then drop the dev dependencies ---
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV SCARF_ANALYTICS=false
COPY package.json package-lock.json ./
# No dependency needs an install script (no native addons); skipping them keeps the build offline-safe.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# --- runtime: production dependencies and the compiled server only, as a non-root user ---
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PORT=8000 \
    LOG_FORMAT=json
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
USER node
EXPOSE 8000
# node:*-slim has no curl; Node's own fetch probes liveness.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# exec form: node is PID 1's child-free process and receives SIGTERM for a graceful shutdown.
CMD ["node", "dist/main.js"]
