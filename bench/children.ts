import { type ChildProcess, fork } from "node:child_process";

/**
 * Child processes for the benchmarks, driven over Node's IPC channel. Each measured sync
 * runs in a fresh child so its peak RSS is its own, and the Access API simulator lives in
 * another so its memory and CPU are not counted against the sync.
 *
 * Protocol: the child sends {ready: info} once; the parent sends {id, cmd, payload}; the
 * child answers {id, ok: true, value} or {id, ok: false, error}.
 */

interface Request {
  id: number;
  cmd: string;
  payload: unknown;
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export type Handlers = Record<string, (payload: never) => Promise<unknown>>;

/** In the child: answer the parent's commands until it disconnects. */
export function serveParent(handlers: Handlers, ready: () => Promise<unknown> = async () => ({})): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error("this module runs as a child of bench/run.js (it needs an IPC channel)");
  process.on("message", (message: Request) => {
    const handler = handlers[message.cmd];
    const run = handler
      ? handler(message.payload as never)
      : Promise.reject(new Error(`unknown command ${message.cmd}`));
    run.then(
      (value) => send({ id: message.id, ok: true, value } satisfies Reply),
      (err: unknown) =>
        send({ id: message.id, ok: false, error: (err as Error)?.stack ?? String(err) } satisfies Reply),
    );
  });
  // The parent going away (even killed) closes the channel: nothing of ours must outlive it.
  process.on("disconnect", () => process.exit(0));
  ready().then(
    (info) => send({ ready: info }),
    (err: unknown) => {
      process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
      process.exit(1);
    },
  );
}

export class Child<Info = unknown> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private exitReason: string | null = null;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly proc: ChildProcess,
    readonly name: string,
    readonly info: Info,
  ) {
    this.exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    proc.on("message", (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(`${name}: ${reply.error}`));
    });
    proc.once("exit", (code, signal) => {
      this.exitReason = `${name} exited (code ${code}, signal ${signal})`;
      for (const waiter of this.pending.values()) waiter.reject(new Error(this.exitReason));
      this.pending.clear();
    });
  }

  /** Forks `script` (a compiled .js) and waits for its ready message. */
  static start<Info>(
    script: string,
    name: string,
    options: { execArgv?: string[]; env?: NodeJS.ProcessEnv } = {},
  ): Promise<Child<Info>> {
    const proc = fork(script, [], {
      execArgv: options.execArgv ?? [],
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null) =>
        reject(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})`));
      proc.once("exit", onExit);
      proc.once("error", reject);
      proc.once("message", (message: { ready?: Info }) => {
        proc.off("exit", onExit);
        resolve(new Child<Info>(proc, name, message.ready as Info));
      });
    });
  }

  call<T>(cmd: string, payload: unknown = {}): Promise<T> {
    if (this.exitReason) return Promise.reject(new Error(this.exitReason));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, cmd, payload } satisfies Request);
    });
  }

  /** Closes the channel (the child exits on disconnect) and waits; SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (this.exitReason) return;
    if (this.proc.connected) this.proc.disconnect();
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Starts a child, runs one command, stops it: one measurement in a fresh process. */
export async function once<T>(
  script: string,
  name: string,
  cmd: string,
  payload: unknown,
  options: { execArgv?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<T> {
  const child = await Child.start(script, name, options);
  try {
    return await child.call<T>(cmd, payload);
  } finally {
    await child.stop();
  }
}
