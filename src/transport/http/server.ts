import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { SyncHandler } from "../handler";
import { mapError } from "../status-table";
import { createConnectHandler } from "./connect-routes";
import { MAX_BODY_BYTES, sendError, sendJson } from "./io";
import { OPENAPI_DOCUMENT } from "./openapi";
import { vaultPlusListsRestHandler } from "./rest-routes";

export interface Readiness {
  ready: boolean;
  reason?: string;
}

export interface HttpServerOptions {
  handler: SyncHandler;
  readiness: () => Promise<Readiness>;
  metrics?: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
}

/**
 * Limits, chosen rather than inherited. Headers must arrive within 15 s and the whole
 * request within 30 s (slow-loris bounds; a sync's own run time is not counted). Idle
 * keep-alive sockets live 65 s, longer than the 60 s idle timeout of common load
 * balancers, so the balancer never reuses a socket this server just closed.
 */
export const HTTP_LIMITS = {
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  maxHeaderSize: 16 * 1024,
  maxBodyBytes: MAX_BODY_BYTES,
} as const;

type Endpoint = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export function createHttpServer({ handler, readiness, metrics }: HttpServerOptions): Server {
  const endpoints = new Map<string, Endpoint>([
    ["/healthz", (_req, res) => sendJson(res, 200, { status: "ok" })],
    ["/readyz", (_req, res) => serveReadiness(res, readiness)],
    ["/openapi.json", (_req, res) => sendJson(res, 200, OPENAPI_DOCUMENT)],
  ]);
  if (metrics) endpoints.set("/metrics", metrics);

  const rest = vaultPlusListsRestHandler(handler, { maxBodyBytes: HTTP_LIMITS.maxBodyBytes });
  const connect = createConnectHandler(handler, {
    maxBodyBytes: HTTP_LIMITS.maxBodyBytes,
    fallback: (req, res) => {
      const path = pathOf(req.url);
      sendError(res as ServerResponse, 404, `no route for ${req.method} ${path}; see /openapi.json`);
    },
  });

  const server = createServer(
    {
      headersTimeout: HTTP_LIMITS.headersTimeoutMs,
      requestTimeout: HTTP_LIMITS.requestTimeoutMs,
      keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs,
      maxHeaderSize: HTTP_LIMITS.maxHeaderSize,
    },
    (req, res) => {
      route(req, res).catch((err: unknown) => {
        const mapped = mapError(err);
        sendError(res, mapped.http, mapped.message);
      });
    },
  );

  // Requests Node's parser refuses (malformed, headers over maxHeaderSize, too slow) and CONNECT
  // (which Node would drop without a word) still get a JSON 4xx.
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    const [status, message] = CLIENT_ERRORS[err.code ?? ""] ?? [400, "malformed HTTP request"];
    answerAndClose(socket, status, message);
  });
  server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
    answerAndClose(socket, 405, "method CONNECT is not allowed");
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const endpoint = endpoints.get(pathOf(req.url));
    if (endpoint) {
      if (req.method === "GET" || req.method === "HEAD") return endpoint(req, res);
      return sendError(res, 405, `method ${req.method} is not allowed on ${pathOf(req.url)}; allowed: GET, HEAD`, {
        allow: "GET, HEAD",
      });
    }
    if (await rest(req, res)) return;
    connect(req, res);
  }

  return server;
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  405: "Method Not Allowed",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
};

const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, `request headers are larger than the limit of ${HTTP_LIMITS.maxHeaderSize} bytes`],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "the request did not arrive in time"],
};

/**
 * A last answer on a socket the HTTP parser gave up on. Unlike Node's default (write, then destroy
 * at once), it ends the socket and reads what the client still sends: destroying a socket with
 * request bytes unread resets the connection, and the reset can swallow the answer. The socket is
 * cut after a second whatever the client does.
 */
function answerAndClose(socket: Duplex, status: number, message: string): void {
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: message });
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  socket.resume();
  setTimeout(() => socket.destroy(), 1000).unref();
}

async function serveReadiness(res: ServerResponse, readiness: () => Promise<Readiness>) {
  let state: Readiness;
  try {
    state = await readiness();
  } catch {
    state = { ready: false, reason: "readiness check failed" };
  }
  if (state.ready) sendJson(res, 200, { status: "ready" });
  else sendJson(res, 503, { status: "not ready", error: state.reason ?? "not ready" });
}

function pathOf(url: string | undefined): string {
  const value = url ?? "/";
  const queryAt = value.indexOf("?");
  return queryAt < 0 ? value : value.slice(0, queryAt);
}

export interface RunningHttpServer {
  server: Server;
  port: number;
  /** Stops accepting, lets in-flight requests finish for at most graceMs, then cuts the rest. */
  close(graceMs?: number): Promise<void>;
}

export async function startHttpServer(
  options: HttpServerOptions,
  { host, port }: { host: string; port: number },
): Promise<RunningHttpServer> {
  let closing = false;
  const server = createHttpServer({
    ...options,
    // Load balancers polling /readyz over a kept-alive socket see the drain start.
    readiness: async () => (closing ? { ready: false, reason: "shutting down" } : options.readiness()),
  });
  // Responses sent once the drain starts close their sockets instead of keeping them alive;
  // server.close() alone would leave those sockets open until the keep-alive timeout.
  const unanswered = new Set<ServerResponse>();
  const markLast = (res: ServerResponse) => {
    if (!res.headersSent) res.setHeader("connection", "close");
  };
  server.prependListener("request", (_req: IncomingMessage, res: ServerResponse) => {
    if (closing) return markLast(res);
    unanswered.add(res);
    res.once("close", () => unanswered.delete(res));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  let closed: Promise<void> | undefined;
  const close = (graceMs = 10_000): Promise<void> => {
    closing = true;
    for (const res of unanswered) markLast(res);
    closed ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      server.closeIdleConnections();
    });
    return closed;
  };
  return { server, port: (server.address() as AddressInfo).port, close };
}
