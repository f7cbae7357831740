import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { openStores, startService } from "../app";
import { loadConfig } from "../config";
import { parseApiKey } from "../service/api-keys";
import { demoLists, startAccessApiSimulator } from "../simulator/access-api";
import { migrateLatest } from "../store/migrations";
import { createLogger } from "../telemetry/log";
import { telemetry } from "../telemetry/setup";
import { drainOnSignals } from "./main";

const DEMO_ACCOUNT = "demo";
const DEMO_CONNECTION = "conn_demo";
const DEMO_STATE = ".vaultplus/demo-credentials.json";
/** The list the printed commands sync: the demo list of two pages. */
const DEMO_LIST = "28489180";

/**
 * `npm start`: the real service on embedded defaults. The Access API simulator is a
 * real HTTP server, so the same upstream client runs here as in production.
 */
export async function runLocal(): Promise<void> {
  const simulator = await startAccessApiSimulator({ apiKey: randomBytes(16).toString("hex"), port: 0 });
  const config = loadConfig({
    VAULTPLUS_DATABASE_URL: "sqlite:.vaultplus/local.db",
    VAULTPLUS_HOST: "127.0.0.1",
    ...process.env,
  });
  const lists = demoLists();
  for (const [listId, items] of Object.entries(lists)) simulator.setList(DEMO_CONNECTION, listId, items);

  const apiKey = await ensureDemoCredentials(config);
  const log = createLogger(config.logLevel);
  const running = await startService({
    config,
    upstream: { url: simulator.url, apiKey: simulator.apiKey },
    log,
    migrate: true,
    telemetry: telemetry(),
  });
  const onClose = running.close.bind(running);
  running.close = async () => {
    await onClose();
    await simulator.close();
  };
  drainOnSignals(running, log.info.bind(log));

  const host = config.host === "0.0.0.0" ? "localhost" : config.host;
  process.stderr.write(`
Vault+ list sync is running in local mode (database ${config.databaseUrl}, Access API simulator at ${simulator.url}).
Demo account "${DEMO_ACCOUNT}", connection "${DEMO_CONNECTION}", demo lists: ${Object.keys(lists).join(", ")}.

REST:
  curl -sS -X PUT http://${host}:${running.httpPort}/v2/vault-plus/lists/${DEMO_LIST}/sync \\
    -H 'apiKey: ${apiKey}' -H 'x-connection-id: ${DEMO_CONNECTION}'

gRPC (server reflection, no local proto needed):
  npx buf curl --protocol grpc --http2-prior-knowledge \\
    -H 'apikey: ${apiKey}' -H 'x-connection-id: ${DEMO_CONNECTION}' \\
    -d '{"listId":"${DEMO_LIST}"}' http://${host}:${running.grpcPort}/vaultplus.v1.VaultPlusLists/SyncList

Also: http://${host}:${running.httpPort}/openapi.json, /healthz, /readyz, /metrics. Ctrl-C stops.
`);
}

/** The demo key is kept in a local file so the printed commands stay valid across restarts. */
async function ensureDemoCredentials(config: ReturnType<typeof loadConfig>): Promise<string> {
  const stores = openStores(config);
  try {
    await migrateLatest(stores.knex);
    const saved = readSavedKey();
    const parsed = saved ? parseApiKey(saved) : null;
    const record = parsed ? await stores.store.findApiKey(parsed.id) : null;
    if (!(await stores.store.findConnection(DEMO_CONNECTION))) {
      await stores.admin.createConnection(DEMO_ACCOUNT, DEMO_CONNECTION);
    }
    if (saved && record && !record.revoked) return saved;
    const key = await stores.admin.createApiKey(DEMO_ACCOUNT, ["ACCOUNT", "ACCESS"]);
    mkdirSync(dirname(DEMO_STATE), { recursive: true });
    writeFileSync(DEMO_STATE, JSON.stringify({ apiKey: key.token }), { mode: 0o600 });
    return key.token;
  } finally {
    await stores.close();
  }
}

function readSavedKey(): string | null {
  try {
    const parsed = JSON.parse(readFileSync(DEMO_STATE, "utf8")) as { apiKey?: unknown };
    return typeof parsed.apiKey === "string" ? parsed.apiKey : null;
  } catch {
    return null;
  }
}
