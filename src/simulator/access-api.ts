import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { UpstreamMedia } from "../domain/media";

/**
 * A built-in OFAuth Access API (SPEC §4) over real HTTP, for local mode and tests:
 * `GET /v2/access/vault/lists/{listId}/media?limit&offset` with `apiKey` and
 * `x-connection-id` headers. Lists are kept per (connection, list); lists set for
 * the connection "*" answer for every connection that has no list of its own.
 * Faults can be scripted to exercise the client's retry and validation paths.
 */

/** A full upstream item as the Access API sends it: counters and unknown fields included. */
export type AccessApiMedia = UpstreamMedia & { counters?: Record<string, number>; [extra: string]: unknown };

export type FaultKind =
  | { kind: "status"; status: number; retryAfter?: string; headers?: Record<string, string> }
  | { kind: "reset" } // socket destroyed before any answer
  | { kind: "hang" } // never answers
  | { kind: "delay"; ms: number } // answers normally after ms
  | { kind: "badJson" }
  | { kind: "wrongShape" } // no `list`
  | { kind: "nonNumericIds" } // ids as strings
  | { kind: "endlessHasMore"; fill?: boolean }; // hasMore always true; fill pads pages with generated items

export type FaultRule = FaultKind & {
  listId?: string;
  connectionId?: string;
  offset?: number;
  /** How many matching requests it hits; default 1. */
  times?: number | "always";
};

export interface FaultHandle {
  /** Requests this rule has answered so far. */
  readonly hits: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  listId: string | undefined;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** The fault kind that answered it, if any. */
  fault: FaultKind["kind"] | undefined;
}

export interface AccessApiSimulator {
  url: string;
  /** The key it accepts, for wiring the client in local mode. */
  apiKey: string;
  setList(connectionId: string, listId: string, items: AccessApiMedia[]): void;
  getList(connectionId: string, listId: string): AccessApiMedia[] | undefined;
  generateItems(count: number, options?: GenerateOptions): AccessApiMedia[];
  injectFault(rule: FaultRule): FaultHandle;
  clearFaults(): void;
  /** Every request received, oldest first. */
  readonly requests: RecordedRequest[];
  clearRequests(): void;
  close(): Promise<void>;
}

export interface SimulatorOptions {
  apiKey: string;
  port?: number;
  host?: string;
  /** Load demoLists() for every connection ("*"). */
  demo?: boolean;
}

const MAX_LIMIT = 40;
const DEFAULT_LIMIT = 10;
const ROUTE = /^\/v2\/access\/vault\/lists\/([^/]+)\/media$/;
const ANY_CONNECTION = "*";

export async function startAccessApiSimulator(options: SimulatorOptions): Promise<AccessApiSimulator> {
  const lists = new Map<string, AccessApiMedia[]>();
  const key = (connectionId: string, listId: string) => `${connectionId}\u0000${listId}`;
  let rules: Array<{ rule: FaultRule; left: number; hits: number }> = [];
  const requests: RecordedRequest[] = [];

  if (options.demo)
    for (const [listId, items] of Object.entries(demoLists())) lists.set(key(ANY_CONNECTION, listId), items);

  function findList(connectionId: string, listId: string): AccessApiMedia[] | undefined {
    return lists.get(key(connectionId, listId)) ?? lists.get(key(ANY_CONNECTION, listId));
  }

  function takeFault(listId: string, connectionId: string | undefined, offset: number): FaultKind | undefined {
    for (const entry of rules) {
      const { rule } = entry;
      if (entry.left <= 0) continue;
      if (rule.listId !== undefined && rule.listId !== listId) continue;
      if (rule.connectionId !== undefined && rule.connectionId !== connectionId) continue;
      if (rule.offset !== undefined && rule.offset !== offset) continue;
      entry.left--;
      entry.hits++;
      return rule;
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://simulator");
    const match = ROUTE.exec(url.pathname);
    const listId = match?.[1];
    const query = Object.fromEntries(url.searchParams);
    const record: RecordedRequest = {
      method: req.method ?? "",
      path: url.pathname,
      listId,
      query,
      headers: req.headers,
      fault: undefined,
    };
    requests.push(record);

    if (!listId || !/^\d+$/.test(listId)) return sendJson(res, 404, { error: "Not found" });
    if (req.method !== "GET") return sendJson(res, 405, { error: "Method not allowed" });

    const connectionId = header(req.headers, "x-connection-id");
    const offset = /^\d+$/.test(query.offset ?? "0") ? Number(query.offset ?? 0) : Number.NaN;
    const limit = /^\d+$/.test(query.limit ?? `${DEFAULT_LIMIT}`) ? Number(query.limit ?? DEFAULT_LIMIT) : Number.NaN;

    // Transport-level faults come first, as from a proxy in front of the API.
    const fault = takeFault(listId, connectionId, offset);
    record.fault = fault?.kind;
    switch (fault?.kind) {
      case "status": {
        const headers: Record<string, string> = { ...fault.headers };
        if (fault.retryAfter !== undefined) headers["retry-after"] = fault.retryAfter;
        return sendJson(res, fault.status, { error: `simulated HTTP ${fault.status}` }, headers);
      }
      case "reset":
        req.socket.destroy();
        return;
      case "hang":
        return; // closeAllConnections() in close() ends it
      case "delay":
        await new Promise((resolve) => setTimeout(resolve, fault.ms));
        break;
    }

    if (header(req.headers, "apikey") !== options.apiKey) return sendJson(res, 401, { error: "Unauthorized" });
    if (!connectionId) return sendJson(res, 400, { error: "x-connection-id header is required" });
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      return sendJson(res, 400, { error: `limit must be an integer from 1 to ${MAX_LIMIT}` });
    }
    if (!Number.isInteger(offset)) return sendJson(res, 400, { error: "offset must be a non-negative integer" });

    const items = findList(connectionId, listId);
    if (!items) return sendJson(res, 404, { error: "List not found" });
    let list: unknown[] = items.slice(offset, offset + limit);
    let hasMore = offset + limit < items.length;

    switch (fault?.kind) {
      case "badJson":
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"list":[{"id":1,');
        return;
      case "wrongShape":
        return sendJson(res, 200, { items: list, more: hasMore });
      case "nonNumericIds":
        list = (list as AccessApiMedia[]).map((item) => ({ ...item, id: `media-${item.id}` }));
        break;
      case "endlessHasMore":
        if (fault.fill && list.length < limit) {
          const start = 9_000_000_000 + offset + list.length;
          list = [...list, ...generateItems(limit - list.length, { startId: start })];
        }
        hasMore = true;
        break;
    }
    return sendJson(res, 200, { list, hasMore });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: "simulator error" });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    apiKey: options.apiKey,
    setList(connectionId, listId, items) {
      lists.set(key(connectionId, listId), [...items]);
    },
    getList(connectionId, listId) {
      const items = lists.get(key(connectionId, listId));
      return items ? [...items] : undefined;
    },
    generateItems,
    injectFault(rule) {
      const entry = { rule, left: rule.times === "always" ? Number.POSITIVE_INFINITY : (rule.times ?? 1), hits: 0 };
      rules.push(entry);
      return {
        get hits() {
          return entry.hits;
        },
      };
    },
    clearFaults() {
      rules = [];
    },
    requests,
    clearRequests() {
      requests.length = 0;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // hung requests included
      });
    },
  };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

export interface GenerateOptions {
  /** Id of the first item; ids follow consecutively. Default 3_000_000_000. */
  startId?: number;
  /** PRNG seed; default startId, so the same call gives the same items. */
  seed?: number;
}

const TYPES = ["photo", "photo", "photo", "video", "video", "gif", "audio"] as const;
const CREATED_BASE = Date.UTC(2024, 0, 1);

/** Deterministic, realistic items: same arguments, same items (URLs included). */
export function generateItems(count: number, options: GenerateOptions = {}): AccessApiMedia[] {
  const startId = options.startId ?? 3_000_000_000;
  const next = mulberry32(options.seed ?? startId);
  const items: AccessApiMedia[] = [];
  for (let i = 0; i < count; i++) {
    const id = startId + i;
    const type = TYPES[Math.floor(next() * TYPES.length)] ?? "photo";
    const landscape = next() < 0.5;
    const [width, height] = landscape ? [1920, 1080] : [1080, 1350];
    const timed = type === "video" || type === "audio" || type === "gif";
    const item: AccessApiMedia = {
      id,
      type,
      convertedToVideo: type === "gif",
      canView: true,
      hasError: false,
      isReady: true,
      createdAt: new Date(CREATED_BASE + i * 3_600_000).toISOString().replace(".000Z", "+00:00"),
      ...(timed ? { duration: 5 + Math.floor(next() * 600) } : {}),
      hasCustomPreview: type === "video" && next() < 0.3,
      files:
        type === "audio"
          ? { full: { url: signedUrl(id, "full", "mp3"), size: 200_000 + Math.floor(next() * 5_000_000) } }
          : {
              full: {
                url: signedUrl(id, "full", type === "photo" ? "jpg" : "mp4"),
                width,
                height,
                size: 100_000 + Math.floor(next() * 50_000_000),
              },
              thumb: { url: signedUrl(id, "thumb", "jpg"), width: 300, height: 300 },
              preview: { url: signedUrl(id, "preview", "jpg"), width: 960, height: landscape ? 540 : 1200 },
              squarePreview: { url: signedUrl(id, "square", "jpg"), width: 960, height: 960 },
            },
      counters: { likesCount: Math.floor(next() * 500), tipsSumm: 0 },
      // Fields the service does not know; the client must drop them.
      mediaCount: 1,
      releaseForms: [],
    };
    items.push(item);
  }
  return items;
}

/** A signed-looking CDN URL: the token in the query string is what must never be logged. */
function signedUrl(id: number, variant: string, ext: string): string {
  const digest = createHash("sha256").update(`${id}:${variant}`).digest("hex");
  const path = `/files/${digest.slice(0, 1)}/${digest.slice(0, 2)}/${digest.slice(0, 32)}/${variant}.${ext}`;
  const token = createHash("sha256").update(`sig:${path}`).digest("base64url");
  return `https://media.simulator.invalid${path}?Expires=1893456000&Signature=${token}&Key-Pair-Id=SIMULATORKEY`;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Demo lists for local mode: "28489180" (42 items: two pages at size 40), "1001"
 * (3 items, all also in 28489180, to show adoption and shared ownership) and "1002"
 * (120 items: three full pages).
 */
export function demoLists(): Record<string, AccessApiMedia[]> {
  const main = generateItems(42, { startId: 3_100_000_000 });
  return {
    "28489180": main,
    "1001": main.slice(0, 3),
    "1002": generateItems(120, { startId: 3_200_000_000 }),
  };
}
