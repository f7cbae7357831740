#!/usr/bin/env node

// `npm test`: buf lint, Biome, gen/ freshness, tsc, then every compiled test under mocha with a
// throwaway MariaDB (VAULTPLUS_TEST_MYSQL_URL) and SQLite. Ends with "N passed, N failed".

const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const bin = path.join(root, "node_modules", ".bin");
// buf runs the local protoc-gen-es plugin from PATH.
const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}` };

function fail(message) {
  process.stderr.write(`\nnpm test: ${message}\n`);
  process.exit(1);
}

function step(title, command, args) {
  process.stderr.write(`\n== ${title}\n`);
  const result = spawnSync(path.join(bin, command), args, { cwd: root, env, stdio: "inherit" });
  if (result.error) fail(`${title}: ${result.error.message}`);
  if (result.status !== 0) fail(`${title} failed (exit status ${result.status})`);
}

/** Relative paths of all files under `dir`, sorted. */
function listFiles(dir, base = dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? listFiles(path.join(dir, e.name), base) : [path.relative(base, path.join(dir, e.name))],
    )
    .sort();
}

function checkGenerated() {
  process.stderr.write("\n== gen/ is up to date\n");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vaultplus-gen-"));
  let problem = null;
  try {
    const result = spawnSync(path.join(bin, "buf"), ["generate", "-o", tmp], { cwd: root, env, stdio: "inherit" });
    if (result.error || result.status !== 0) {
      problem = `buf generate failed (${result.error?.message ?? `exit status ${result.status}`})`;
    } else {
      const fresh = path.join(tmp, "gen");
      const committed = path.join(root, "gen");
      const a = listFiles(fresh);
      const b = listFiles(committed);
      const differs =
        a.length !== b.length ||
        a.some(
          (f, i) =>
            f !== b[i] || !fs.readFileSync(path.join(fresh, f)).equals(fs.readFileSync(path.join(committed, f))),
        );
      if (differs) problem = "gen/ is stale: run npm run generate and commit";
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (problem) fail(problem);
}

/** Compiled tests whose TypeScript source still exists (dist/ may hold files of deleted tests). */
function testFiles() {
  return listFiles(path.join(root, "dist", "test"))
    .filter((f) => f.endsWith(".test.js"))
    .filter((f) => fs.existsSync(path.join(root, "test", f.replace(/\.js$/, ".ts"))))
    .map((f) => path.join(root, "dist", "test", f));
}

function runMocha(files, rootHooks) {
  const mod = require("mocha"); // mocha 12 is ESM: require(esm) gives its namespace
  const Mocha = mod.default ?? mod.Mocha ?? mod;
  const mocha = new Mocha({ reporter: "spec", timeout: 20_000, color: process.stdout.isTTY === true, rootHooks });
  for (const file of files) mocha.addFile(file);
  return mocha.loadFilesAsync().then(
    () =>
      new Promise((resolve) => {
        const runner = mocha.run(() => resolve(runner.stats));
      }),
  );
}

async function main() {
  step("buf lint", "buf", ["lint"]);
  step("biome (lint and format)", "biome", ["ci", "."]);
  checkGenerated();
  step("tsc", "tsc", ["-p", "."]);

  const files = testFiles();
  if (files.length === 0) fail("no test files found under dist/test");

  let server = null;
  let stopping = null;
  const stopServer = () => {
    stopping ??= server
      ? server.stop().catch((err) => process.stderr.write(`could not stop MariaDB: ${err.message}\n`))
      : Promise.resolve();
    return stopping;
  };
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, () => {
      process.stderr.write(`\nnpm test: ${signal}, stopping MariaDB\n`);
      stopServer().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
    });
  }

  // OpenTelemetry first, as bin/vaultplus.js does: the instrumentations patch grpc-js,
  // node:http, knex and mysql2 only if they are registered before those load. The same
  // file is in .mocharc.json's `require` for single-file runs.
  const { mochaHooks } = require(path.join(root, "dist", "test", "support", "telemetry.js"));

  let stats;
  try {
    if (process.env.VAULTPLUS_TEST_MYSQL_URL) {
      process.stderr.write("\n== using the MariaDB/MySQL server at VAULTPLUS_TEST_MYSQL_URL\n");
    } else {
      process.stderr.write("\n== starting MariaDB\n");
      const { startMariaDb } = require(path.join(root, "dist", "test", "support", "mariadb.js"));
      server = await startMariaDb();
      process.env.VAULTPLUS_TEST_MYSQL_URL = server.url;
    }
    process.stderr.write(`\n== mocha: ${files.length} test files\n`);
    process.setSourceMapsEnabled(true);
    stats = await runMocha(files, mochaHooks);
  } finally {
    await stopServer();
  }

  const pending = stats.pending ? `, ${stats.pending} pending` : "";
  console.log(`\n${stats.passes} passed, ${stats.failures} failed${pending}`);
  if (stats.passes + stats.failures === 0) fail("no test ran");
  // Exit explicitly: a test that leaked a handle must not hang the run.
  process.exit(stats.failures > 0 ? 1 : 0);
}

main().catch((err) => fail(err?.stack ?? String(err)));
