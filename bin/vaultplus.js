#!/usr/bin/env node

// Telemetry must be set up before the instrumented modules (http, grpc-js, undici,
// mysql2, knex) are first required, so it starts here, ahead of the CLI itself.
// Admin commands (keys, connections, migrate) do not trace.
const command = process.argv[2];
const telemetry =
  command === "serve" || command === "local" || command === "sync"
    ? require("../dist/src/telemetry/setup.js").startTelemetry()
    : undefined;
const done = require("../dist/src/cli/main.js").main(process.argv);
// A one-shot sync exits when its work is done: flush its spans and metrics first
// (serve and local flush on SIGTERM/SIGINT).
if (command === "sync") done.then(() => telemetry.shutdown()).catch(() => undefined);
