import { execFileSync } from "node:child_process";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createKnex } from "../src/store/db";
import { type MariaDbServer, startMariaDb } from "../test/support/mariadb";
import { Child } from "./children";
import { evaluateTargets, renderReport } from "./report";
import { runScenarios, SCENARIOS, type ScenarioName, type ScenarioResult } from "./scenarios";
import type { SimulatorInfo } from "./simulator-process";
import { runTransport, type TransportReport } from "./transport";

/**
 * `npm run bench` (full) and `npm run bench -- --quick`: starts a throwaway MariaDB and the
 * Access API simulator (its own process), runs the sync scenarios and the transport
 * comparison, prints the table and writes bench/results.json (quick: bench/results-quick.json).
 *
 * Flags: --quick, --runs=N, --sizes=1000,10000, --only=scenarios|transport, --scenarios=first,noop,churn,
 * --profile (each measuring child writes a .cpuprofile to bench/profiles/), --out=PATH.
 * VAULTPLUS_BENCH_MYSQL_URL=mysql://user:pass@host:port/ uses an existing server instead
 * (the user must create databases and set max_allowed_packet; nothing else may use it).
 */

interface Args {
  quick: boolean;
  runs: number;
  sizes: number[];
  only: "scenarios" | "transport" | null;
  scenarios: ScenarioName[];
  profile: boolean;
  out: string;
}

const ROOT = resolve(__dirname, "..", "..");

function parseArgs(argv: string[]): Args {
  const flag = (name: string) => argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  const value = (name: string) => flag(name)?.split("=")[1];
  const quick = Boolean(flag("quick"));
  const only = value("only");
  if (only && only !== "scenarios" && only !== "transport") throw new Error("--only is scenarios or transport");
  return {
    quick,
    runs: Number(value("runs") ?? (quick ? 3 : 5)),
    // Quick keeps the two sizes the scaling and 50k targets need, to stay under two minutes.
    sizes: (value("sizes") ?? (quick ? "10000,50000" : "1000,10000,50000")).split(",").map(Number),
    only: (only as Args["only"]) ?? null,
    scenarios: (value("scenarios")?.split(",") ?? [...SCENARIOS]).map((name) => {
      if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`--scenarios: unknown ${name}`);
      return name as ScenarioName;
    }),
    profile: Boolean(flag("profile")),
    out: resolve(value("out") ?? join(ROOT, "bench", quick ? "results-quick.json" : "results.json")),
  };
}

const log = (line: string) => process.stderr.write(`  ${line}\n`);

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const execArgv = args.profile ? ["--cpu-prof", `--cpu-prof-dir=${join(ROOT, "bench", "profiles")}`] : [];

  let server: MariaDbServer | null = null;
  let serverUrl = process.env.VAULTPLUS_BENCH_MYSQL_URL;
  let simulator: Child<SimulatorInfo> | null = null;
  try {
    if (!serverUrl) {
      process.stderr.write("== starting MariaDB\n");
      server = await startMariaDb();
      serverUrl = server.url;
    }
    const mariadbVersion = await prepareServer(serverUrl);
    process.stderr.write("== starting the Access API simulator (separate process)\n");
    simulator = await Child.start<SimulatorInfo>(join(__dirname, "simulator-process.js"), "simulator");

    let scenarios: ScenarioResult[] = [];
    if (args.only !== "transport") {
      process.stderr.write(`== sync scenarios: N = ${args.sizes.join(", ")}, ${args.runs} runs each\n`);
      scenarios = await runScenarios({
        serverUrl,
        simulator,
        sizes: args.sizes,
        runs: args.runs,
        only: args.scenarios,
        settleMs: args.quick ? 100 : 250,
        execArgv,
        log,
      });
    }
    let transport: TransportReport | null = null;
    if (args.only !== "scenarios") {
      process.stderr.write("== transport overhead: no-op re-sync of a 100-item list\n");
      transport = await runTransport({
        serverUrl,
        simulator,
        quick: args.quick,
        rounds: args.quick ? 2 : 3,
        execArgv,
        log,
      });
    }

    const targets = evaluateTargets(scenarios, transport);
    const results = {
      mode: args.quick ? "quick" : "full",
      machine: machine(mariadbVersion),
      runsPerFigure: args.runs,
      sizes: args.sizes,
      scenarios,
      transport,
      targets,
      benchWallSeconds: (Date.now() - started) / 1000,
    };
    mkdirSync(dirname(args.out), { recursive: true });
    writeFileSync(`${args.out}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
    renameSync(`${args.out}.tmp`, args.out);
    process.stdout.write(renderReport(results));
    process.stdout.write(`\nwrote ${args.out} (bench took ${results.benchWallSeconds.toFixed(0)} s)\n`);
  } finally {
    await simulator?.stop();
    await server?.stop();
  }
}

/**
 * The throwaway server is sized for tests (64 MiB buffer pool): the benchmark's data set (up to
 * 50,000-item lists, several connections) would not stay in memory, and measurements would depend
 * on page eviction rather than on the service. A production server is sized to its working set.
 */
const BUFFER_POOL_BYTES = 1024 * 1024 * 1024;

async function prepareServer(serverUrl: string): Promise<string> {
  const knex = createKnex(serverUrl, { dbTimeoutMs: 10_000 });
  try {
    await knex.raw("SET GLOBAL max_allowed_packet = 1073741824"); // for the floor's bulk inserts
    await knex.raw(`SET GLOBAL innodb_buffer_pool_size = ${BUFFER_POOL_BYTES}`);
    // The resize runs in the background.
    for (let i = 0; i < 300; i++) {
      const [size] = await knex.raw("SELECT @@GLOBAL.innodb_buffer_pool_size AS v");
      const [status] = await knex.raw("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_resize_status'");
      const state = String((status as Array<{ Value: string }>)[0]?.Value ?? "");
      const done = state === "" || /completed/i.test(state);
      if (Number((size as Array<{ v: unknown }>)[0]?.v) >= BUFFER_POOL_BYTES && done) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const [rows] = await knex.raw("SELECT VERSION() AS v");
    return String((rows as Array<{ v: string }>)[0]?.v);
  } finally {
    await knex.destroy();
  }
}

function machine(mariadb: string) {
  const cpu = cpus();
  let commit: string | null = null;
  try {
    const git = (...args: string[]) =>
      execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    commit =
      git("rev-parse", "--short", "HEAD") + (git("status", "--porcelain", "--untracked-files=no") ? "+changes" : "");
  } catch {
    // not a git checkout
  }
  return {
    cpu: cpu[0]?.model ?? "unknown",
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    mariadb,
    commit,
    date: new Date().toISOString(),
  };
}

main().catch((err) => {
  process.stderr.write(`\nbench failed: ${(err as Error)?.stack ?? err}\n`);
  process.exitCode = 1;
});
