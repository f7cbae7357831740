import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { expect } from "chai";
import type { SyncCounters } from "../../src/domain/planner";
import { type AccessApiMedia, generateItems } from "../../src/simulator/access-api";
import type { AdminStore, StoreSnapshot } from "../../src/store/admin";
import type { RestResult } from "../support/stack";

/** Helpers shared by the hardening suites (test/hardening/*.test.ts). */

export const COUNTER_FIELDS = [
  "seen",
  "addedItems",
  "updatedItems",
  "removedItems",
  "unchangedItems",
  "adoptedItems",
] as const;

/** A connection's state without `runs` (failed runs are recorded on purpose): what "unchanged" compares. */
export type State = Omit<StoreSnapshot, "runs">;

export async function stateOf(admin: AdminStore, connectionId: string): Promise<State> {
  const { runs: _runs, ...state } = await admin.snapshot(connectionId);
  return state;
}

/** The counters of a 200 body, after checking the body is exactly the documented eight fields. */
export function countersOf(result: RestResult, listId?: string): SyncCounters {
  expect(result.status, JSON.stringify(result.body)).to.equal(200);
  expect(Object.keys(result.body).sort()).to.deep.equal(["listId", "synced", ...COUNTER_FIELDS].sort());
  expect(result.body.synced).to.equal(true);
  if (listId !== undefined) expect(result.body.listId).to.equal(listId);
  const counters = Object.fromEntries(COUNTER_FIELDS.map((f) => [f, result.body[f]])) as unknown as SyncCounters;
  expectInvariants(counters);
  return counters;
}

/** SPEC §3: seen = added + updated + unchanged + adopted, all non-negative integers. */
export function expectInvariants(c: SyncCounters): void {
  for (const f of COUNTER_FIELDS) expect(Number.isInteger(c[f]) && c[f] >= 0, `${f}=${c[f]}`).to.equal(true);
  expect(c.seen, JSON.stringify(c)).to.equal(c.addedItems + c.updatedItems + c.unchangedItems + c.adoptedItems);
}

/** A copy of the item whose content (and so fingerprint) differs; `n` picks the variant. */
export function changed(item: AccessApiMedia, n = 1): AccessApiMedia {
  const full = item.files?.full ?? { url: "https://media.simulator.invalid/x" };
  return { ...item, files: { ...item.files, full: { ...full, size: (full.size ?? 0) + n } } };
}

/** A copy with fresh volatile fields only (signed URLs, counters): same fingerprint. */
export function resigned(item: AccessApiMedia, n = 1): AccessApiMedia {
  const files = Object.fromEntries(
    Object.entries(item.files ?? {}).map(([k, f]) => [k, { ...f, url: `${f.url}&r=${n}` }]),
  ) as AccessApiMedia["files"];
  return { ...item, files, counters: { likesCount: n } };
}

/**
 * The two versions of a list every fault case starts from (page size 10 → 4 pages of v2):
 * L v1 = base[0,35); L2 = base[25,40) shares base[25,35) with L.
 * L v2 = base[5,30) with base[10..12] changed, + base[33,35), + base[40,45) new.
 * So the sync of L v2 after v1 purges base[0..4] (5), leaves base[30..32] to L2 (no purge),
 * refreshes 3, adds 5, keeps 24: seen 32.
 */
export function scenario(startId = 5_000_000_000) {
  const base = generateItems(45, { startId });
  const at = (i: number) => base[i] as AccessApiMedia;
  const range = (from: number, to: number) => base.slice(from, to);
  const v1 = range(0, 35);
  const l2 = range(25, 40);
  const v2 = [
    ...range(5, 30).map((item, i) => (i + 5 >= 10 && i + 5 <= 12 ? changed(item) : resigned(item))),
    ...range(33, 35),
    ...range(40, 45),
  ];
  const expected: SyncCounters = {
    seen: 32,
    addedItems: 5,
    updatedItems: 3,
    removedItems: 5,
    unchangedItems: 24,
    adoptedItems: 0,
  };
  return { base, at, v1, l2, v2, expected };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a truthy value; fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
    }
    await sleep(25);
  }
}

/** Resolves with the settled outcome and how long it took. */
export async function timed<T>(work: Promise<T>): Promise<{ value?: T; error?: unknown; ms: number }> {
  const started = performance.now();
  try {
    const value = await work;
    return { value, ms: performance.now() - started };
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes: Record<string, unknown> }>;
  status?: { code?: number; message?: string };
}

export interface OtlpCollector {
  url: string;
  spans: OtlpSpan[];
  /** Every request body received (traces and metrics), as text. */
  bodies: string[];
  close(): Promise<void>;
}

/** A minimal OTLP/HTTP JSON receiver (OTEL_EXPORTER_OTLP_PROTOCOL=http/json) keeping every span. */
export async function startOtlpCollector(): Promise<OtlpCollector> {
  const spans: OtlpSpan[] = [];
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    readAll(req).then(
      (raw) => {
        const text = (req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf8");
        bodies.push(text);
        if (req.url?.startsWith("/v1/traces")) spans.push(...parseSpans(text));
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      },
      () => res.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

type OtlpValue = {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
};
type OtlpKeyValue = { key: string; value: OtlpValue };

function attributes(list: OtlpKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = plain(value);
  return out;
}

function plain(v: OtlpValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(plain);
  return undefined;
}

function parseSpans(text: string): OtlpSpan[] {
  const body = JSON.parse(text) as {
    resourceSpans?: Array<{
      scopeSpans?: Array<{
        spans?: Array<{
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          name: string;
          attributes?: OtlpKeyValue[];
          events?: Array<{ name: string; attributes?: OtlpKeyValue[] }>;
          status?: { code?: number; message?: string };
        }>;
      }>;
    }>;
  };
  const out: OtlpSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
          name: s.name,
          attributes: attributes(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attributes(e.attributes) })),
          ...(s.status ? { status: s.status } : {}),
        });
      }
    }
  }
  return out;
}

/** Env for a `vaultplus serve` child that exports traces to `collector` quickly. */
export function otlpEnv(collector: OtlpCollector): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_BSP_SCHEDULE_DELAY: "50",
    OTEL_METRIC_EXPORT_INTERVAL: "60000",
    OTEL_SERVICE_NAME: "vaultplus-hardening",
  };
}

/** SQL (and a little shell/template) injection attempts, thrown at every input. */
export const INJECTIONS = [
  "' OR '1'='1",
  "1' OR '1'='1' -- ",
  "1; DROP TABLE connections; --",
  "1' UNION SELECT secret_hash FROM api_keys -- ",
  "Robert'); DROP TABLE accounts;--",
  '" OR ""="',
  "\\'; SELECT SLEEP(5); -- ",
  "1 AND SLEEP(5)",
  "`id`",
  "%27%20OR%201%3D1",
  "0x27 OR 1=1",
  "1/**/OR/**/1=1",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection attempt, on purpose
  "${7*7}",
  "../../etc/passwd",
  "conn_a' AND status='disabled",
  "*",
  "%",
  "_",
] as const;
