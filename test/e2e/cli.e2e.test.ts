import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { type AccessApiSimulator, generateItems, startAccessApiSimulator } from "../../src/simulator/access-api";
import { UPSTREAM_KEY } from "../support/stack";

const run = promisify(execFile);
const ROOT = join(__dirname, "..", "..", "..");
const BIN = join(ROOT, "bin", "vaultplus.js");

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("CLI vaultplus", () => {
  let dir: string;
  let env: Record<string, string>;
  let simulator: AccessApiSimulator;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "vaultplus-cli-"));
    simulator = await startAccessApiSimulator({ apiKey: UPSTREAM_KEY, port: 0 });
    env = {
      VAULTPLUS_DATABASE_URL: `sqlite:${join(dir, "cli.db")}`,
      VAULTPLUS_UPSTREAM_URL: simulator.url,
      VAULTPLUS_UPSTREAM_API_KEY: UPSTREAM_KEY,
    };
  });
  after(async () => {
    await simulator.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("--help lists every command", async () => {
    const r = await cli(["--help"], env);
    expect(r.code).to.equal(0);
    for (const c of ["serve", "migrate", "keys", "connections", "sync", "local"]) expect(r.stdout).to.include(c);
  });

  it("bad configuration stops with one line naming the variable", async () => {
    const r = await cli(["migrate"], { ...env, VAULTPLUS_DATABASE_URL: "postgres://x" });
    expect(r.code).to.equal(2);
    expect(r.stderr.trim().split("\n")).to.have.length(1);
    expect(r.stderr).to.match(/^vaultplus: invalid configuration: VAULTPLUS_DATABASE_URL /);
    const port = await cli(["serve"], { ...env, VAULTPLUS_HTTP_PORT: "http" });
    expect(port.code).to.equal(2);
    expect(port.stderr).to.include("VAULTPLUS_HTTP_PORT");
  });

  it("migrate, keys, connections and sync work together, with --json on stdout", async () => {
    expect((await cli(["migrate"], env)).stdout).to.match(/applied: 001_initial/);
    expect((await cli(["migrate"], env)).stdout).to.include("database is up to date");

    const key = JSON.parse(
      (await cli(["keys", "create", "--account", "acct_cli", "--scopes", "ACCOUNT,ACCESS", "--json"], env)).stdout,
    );
    expect(key).to.include({ accountId: "acct_cli" });
    expect(key.scopes).to.deep.equal(["ACCOUNT", "ACCESS"]);
    expect(key.apiKey).to.match(/^vp_[0-9a-f]{16}_/);

    const conn = JSON.parse(
      (await cli(["connections", "create", "--account", "acct_cli", "--id", "conn_cli", "--json"], env)).stdout,
    );
    expect(conn).to.deep.equal({ id: "conn_cli", accountId: "acct_cli", status: "active" });

    simulator.setList("conn_cli", "77", generateItems(45, { startId: 9_000_000_000 }));
    const sync = await cli(["sync", "77", "--connection", "conn_cli", "--json"], env);
    expect(sync.code, sync.stderr).to.equal(0);
    expect(JSON.parse(sync.stdout)).to.deep.equal({
      synced: true,
      listId: "77",
      seen: 45,
      addedItems: 45,
      updatedItems: 0,
      removedItems: 0,
      unchangedItems: 0,
      adoptedItems: 0,
    });
    const again = await cli(["sync", "77", "--connection", "conn_cli"], env);
    expect(again.stdout).to.include("unchanged 45");

    expect((await cli(["keys", "revoke", key.id], env)).code).to.equal(0);
    expect((await cli(["keys", "revoke", "ffffffffffffffff"], env)).code).to.equal(1);
    expect((await cli(["connections", "disable", "conn_cli"], env)).code).to.equal(0);
    const refused = await cli(["sync", "77", "--connection", "conn_cli"], env);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.include("unknown or disabled");
  });

  it("refuses unknown scopes and bad account ids with a message that says what to do", async () => {
    const scope = await cli(["keys", "create", "--account", "acct_cli", "--scopes", "ADMIN"], env);
    expect(scope.code).to.equal(1);
    expect(scope.stderr).to.match(/ADMIN/);
    expect(scope.stderr).to.match(/ACCOUNT/);
    const account = await cli(["connections", "create", "--account", "bad account"], env);
    expect(account.code).to.equal(1);
    expect(account.stderr).to.include("account id");
  });
});

describe("local mode (npm start)", () => {
  it("prints curl and buf curl commands that work as printed", async function () {
    this.timeout(60_000);
    const dir = mkdtempSync(join(tmpdir(), "vaultplus-local-"));
    const child = spawn(process.execPath, [BIN, "local"], {
      cwd: dir,
      env: { ...process.env, VAULTPLUS_HTTP_PORT: "0", VAULTPLUS_GRPC_PORT: "0", VAULTPLUS_LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let banner = "";
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no banner:\n${banner}`)), 30_000);
        child.stderr.on("data", (chunk) => {
          banner += String(chunk);
          if (banner.includes("Ctrl-C stops")) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once("exit", (code) => reject(new Error(`local exited ${code}:\n${banner}`)));
      });
      const command = (start: string) => {
        const at = banner.indexOf(start);
        const lines: string[] = [];
        for (const line of banner.slice(at).split("\n")) {
          lines.push(line.trim().replace(/\\$/, ""));
          if (!line.trimEnd().endsWith("\\")) break;
        }
        return lines.join(" ");
      };
      const curl = await run("bash", ["-c", command("curl ")], { cwd: ROOT });
      expect(JSON.parse(curl.stdout)).to.deep.equal({
        synced: true,
        listId: "28489180",
        seen: 42,
        addedItems: 42,
        updatedItems: 0,
        removedItems: 0,
        unchangedItems: 0,
        adoptedItems: 0,
      });
      const buf = await run("bash", ["-c", command("npx buf curl")], { cwd: ROOT });
      expect(JSON.parse(buf.stdout)).to.deep.equal({ synced: true, listId: "28489180", seen: 42, unchangedItems: 42 });
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
