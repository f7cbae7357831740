#!/usr/bin/env node

// Entry point of the `vaultplus` CLI: telemetry must be set up before the
// instrumented modules (http, grpc-js, mysql2, knex) are first required.
require("../dist/src/cli/main.js").main(process.argv);
