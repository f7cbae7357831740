import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { createConnection } from "mysql2/promise";

/**
 * A throwaway MariaDB server for tests: its own temp datadir, socket and free TCP port,
 * so concurrent test runs never collide. Installs mariadb-server with apt when missing
 * and running as root (a fresh CI machine); otherwise fails with a clear message.
 */

export interface MariaDbServer {
  /** mysql://u:p@127.0.0.1:PORT/ — user `u` has ALL privileges; append a database name. */
  url: string;
  /** Stops the server for good and removes its files. */
  stop(): Promise<void>;
  /** The running mariadbd's process id; undefined while halted. */
  readonly pid: number | undefined;
  /**
   * Outage tests: stops mariadbd (SIGTERM: clean shutdown; SIGKILL: a crash, InnoDB recovers on
   * restart) but keeps its datadir and port, so restart() brings the same databases back.
   */
  halt(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts a halted server again on the same port and datadir; resolves once it accepts connections. */
  restart(): Promise<void>;
  /** SIGSTOP: a frozen server, its TCP port still accepting, nothing answered. thaw() (SIGCONT) resumes it. */
  freeze(): void;
  thaw(): void;
}

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const isRoot = process.getuid?.() === 0;
const STARTING_CODES = new Set([
  "ENOENT",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "PROTOCOL_CONNECTION_LOST",
  "ER_SERVER_SHUTDOWN",
]);

export async function startMariaDb(): Promise<MariaDbServer> {
  const { mariadbd, installDb } = locateBinaries();
  const dir = mkdtempSync(join(tmpdir(), "vaultplus-mariadb-"));
  try {
    const datadir = join(dir, "data");
    run(
      installDb,
      [
        "--no-defaults",
        `--datadir=${datadir}`,
        ...(isRoot ? ["--user=root"] : []),
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
      ],
      { quiet: true },
    );
    // The port is free when probed; if another process takes it first, the server fails to bind: retry.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        return await launch(mariadbd, dir, datadir, port);
      } catch (err) {
        if (attempt >= 3 || !/Address already in use|Can't start server: Bind/i.test(String(err))) throw err;
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function launch(mariadbd: string, dir: string, datadir: string, port: number): Promise<MariaDbServer> {
  let instance: Instance | null = await startInstance(mariadbd, dir, datadir, port);
  // Never let a forgotten server outlive the test process.
  const onExit = () => {
    instance?.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", onExit);

  let stopped: Promise<void> | null = null;
  const server: MariaDbServer = {
    url: `mysql://u:p@127.0.0.1:${port}/`,
    get pid() {
      return instance?.child.pid;
    },
    async halt(signal = "SIGTERM") {
      const current = instance;
      instance = null;
      if (current) await current.halt(signal);
    },
    async restart() {
      if (stopped) throw new Error("the server was stopped for good");
      if (instance) throw new Error("the server is running: halt() it first");
      // A crash leaves the socket and pid files behind.
      for (const file of ["mysqld.sock", "mysqld.sock.lock", "mysqld.pid"]) rmSync(join(dir, file), { force: true });
      instance = await startInstance(mariadbd, dir, datadir, port);
    },
    freeze() {
      instance?.child.kill("SIGSTOP");
    },
    thaw() {
      instance?.child.kill("SIGCONT");
    },
    stop() {
      stopped ??= (async () => {
        process.removeListener("exit", onExit);
        await server.halt("SIGTERM");
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
  return server;
}

interface Instance {
  child: ChildProcess;
  halt(signal: "SIGTERM" | "SIGKILL"): Promise<void>;
}

/** One mariadbd process on `datadir` and `port`, ready for connections (user `u` created). */
async function startInstance(mariadbd: string, dir: string, datadir: string, port: number): Promise<Instance> {
  const socket = join(dir, "mysqld.sock");
  const errorLog = join(dir, `error-${port}.log`);
  const child = spawn(
    mariadbd,
    [
      "--no-defaults",
      `--datadir=${datadir}`,
      `--socket=${socket}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--pid-file=${join(dir, "mysqld.pid")}`,
      `--log-error=${errorLog}`,
      ...(isRoot ? ["--user=root"] : []),
      "--skip-log-bin",
      "--skip-name-resolve",
      "--innodb-buffer-pool-size=64M",
      "--innodb-log-file-size=32M",
      "--innodb-flush-log-at-trx-commit=2",
      "--innodb-use-native-aio=0",
      "--performance-schema=OFF",
      "--character-set-server=utf8mb4",
      "--max-connections=500",
    ],
    { stdio: "ignore" },
  );
  const killer = startWatchdog(child, dir);
  let exited: string | null = null;
  child.on("exit", (code, signal) => {
    exited = `mariadbd exited (code ${code}, signal ${signal})`;
  });
  child.on("error", (err) => {
    exited = `mariadbd could not start: ${err.message}`;
  });
  // Never let a forgotten server keep the test process alive; the exit hook and the watchdog kill it.
  child.unref();

  const halt = async (signal: "SIGTERM" | "SIGKILL") => {
    child.kill("SIGCONT"); // a frozen server would not act on SIGTERM
    await terminate(child, signal);
    killer.disarm();
  };

  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exited) throw new Error(exited);
      try {
        const conn = await createConnection({ socketPath: socket, user: "root", connectTimeout: 2000 });
        try {
          // 'u'@'localhost' too: an anonymous ''@'localhost' would otherwise shadow 'u'@'%'.
          for (const host of ["%", "localhost"]) {
            await conn.query(`CREATE USER IF NOT EXISTS 'u'@'${host}' IDENTIFIED BY 'p'`);
            await conn.query(`GRANT ALL PRIVILEGES ON *.* TO 'u'@'${host}' WITH GRANT OPTION`);
          }
          await conn.query("FLUSH PRIVILEGES");
        } finally {
          await conn.end();
        }
        return { child, halt };
      } catch (err) {
        // Not accepting connections yet; anything else is a real failure.
        if (!STARTING_CODES.has(String((err as { code?: unknown }).code))) throw err;
      }
      if (Date.now() > deadline) throw new Error(`mariadbd not ready after ${READY_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (err) {
    const tail = logTail(errorLog);
    await halt("SIGTERM"); // the caller removes the directory, or retries on another port
    throw new Error(
      `could not start MariaDB for the tests: ${(err as Error).message}\n--- mariadbd error log (tail) ---\n${tail}`,
    );
  }
}

function locateBinaries(): { mariadbd: string; installDb: string } {
  let mariadbd = findBinary(["mariadbd", "mysqld"], ["/usr/sbin", "/usr/libexec"]);
  let installDb = findBinary(["mariadb-install-db", "mysql_install_db"], ["/usr/bin", "/usr/scripts"]);
  if (!mariadbd || !installDb) {
    if (!isRoot) {
      throw new Error(
        "MariaDB server not found (mariadbd, mariadb-install-db): install it (Debian/Ubuntu: sudo apt-get install -y mariadb-server) " +
          "or point VAULTPLUS_TEST_MYSQL_URL at a server (mysql://user:pass@host:port/) whose user may create databases",
      );
    }
    process.stderr.write("MariaDB server not found: installing mariadb-server with apt-get\n");
    run("apt-get", ["update"]);
    run("apt-get", ["install", "-y", "-o", "DPkg::Lock::Timeout=300", "mariadb-server"], {
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    mariadbd = findBinary(["mariadbd", "mysqld"], ["/usr/sbin", "/usr/libexec"]);
    installDb = findBinary(["mariadb-install-db", "mysql_install_db"], ["/usr/bin", "/usr/scripts"]);
    if (!mariadbd || !installDb)
      throw new Error("mariadb-server was installed but mariadbd / mariadb-install-db are still not found");
  }
  return { mariadbd, installDb };
}

function findBinary(names: string[], extraDirs: string[]): string | null {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...extraDirs];
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  return null;
}

/** Runs a setup command, its output on stderr (or, when quiet, only in the error); throws when it fails. */
function run(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; quiet?: boolean } = {}): void {
  const result = spawnSync(command, args, {
    stdio: ["ignore", opts.quiet ? "pipe" : 2, opts.quiet ? "pipe" : 2],
    env: opts.env ?? process.env,
    encoding: "utf8",
  });
  if (result.error || result.status !== 0) {
    const output = opts.quiet ? `\n${result.stdout ?? ""}${result.stderr ?? ""}` : "";
    throw new Error(
      `${command} ${args.join(" ")} failed: ${result.error?.message ?? `exit status ${result.status}`}${output}`,
    );
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

async function terminate(child: ChildProcess, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

function logTail(path: string, lines = 30): string {
  if (!existsSync(path)) return "(no error log)";
  return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
}

/**
 * A tiny process that kills the server and removes its files if this process dies without
 * stopping it (even by SIGKILL): it waits for its stdin to close, which happens when we die.
 */
function startWatchdog(child: ChildProcess, dir: string): { disarm(): void } {
  if (child.pid === undefined) return { disarm() {} };
  const script = `
    let armed = true;
    process.stdin.on("data", () => { armed = false; });
    process.stdin.on("end", () => {
      if (armed) {
        try { process.kill(${child.pid}, "SIGKILL"); } catch {}
        setTimeout(() => { require("fs").rmSync(${JSON.stringify(dir)}, { recursive: true, force: true }); }, 1000);
      }
    });
    process.stdin.resume();`;
  const watchdog = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "ignore", "ignore"], detached: true });
  watchdog.unref();
  const stdin = watchdog.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null;
  stdin?.unref?.();
  return {
    disarm() {
      stdin?.end("disarm");
    },
  };
}
