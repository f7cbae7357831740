import { createKnex } from "../../src/store/db";
import { KnexStore } from "../../src/store/knex-store";

/**
 * Another process holding a connection's lock, for cross-process lock tests:
 *   node dist/test/support/lock-holder.js DATABASE_URL CONNECTION_ID HOLD_MS
 * prints "locked <epoch ms>" once it holds the lock, holds it HOLD_MS, commits, prints "released".
 */
async function main(): Promise<void> {
  const [url, connectionId, holdMs] = process.argv.slice(2);
  if (!url || !connectionId || !holdMs) throw new Error("usage: lock-holder DATABASE_URL CONNECTION_ID HOLD_MS");
  const knex = createKnex(url, { dbTimeoutMs: 10_000 });
  const store = new KnexStore(knex, { dbTimeoutMs: 10_000 });
  try {
    await store.withConnectionLock(connectionId, async () => {
      process.stdout.write(`locked ${Date.now()}\n`);
      await new Promise((resolve) => setTimeout(resolve, Number(holdMs)));
    });
    process.stdout.write("released\n");
  } finally {
    await knex.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});
