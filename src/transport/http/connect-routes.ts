import { ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  createAsyncIterable,
  encodeEnvelope,
  readAllBytes,
  type UniversalHandler,
  type UniversalServerRequest,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { type ConnectNodeAdapterOptions, connectNodeAdapter } from "@connectrpc/connect-node";
import { VaultPlusLists } from "../../../gen/vaultplus/v1/lists_pb";
import { malformedRequestMessage, readCredentials, type SyncHandler, vaultPlusListsImpl } from "../handler";
import { mapError } from "../status-table";

/** VaultPlusLists over Connect (and gRPC-web; gRPC needs HTTP/2, which this port does not speak). */
export function connectRoutes(handler: SyncHandler): (router: ConnectRouter) => void {
  const impl = vaultPlusListsImpl(handler);
  return (router) => {
    router.service(VaultPlusLists, {
      async syncList(request, context) {
        try {
          return await impl.syncList(request, callContext(context));
        } catch (err) {
          const mapped = mapError(err);
          throw new ConnectError(mapped.message, mapped.connect);
        }
      },
    });
    router.handlers.forEach((h, i) => {
      router.handlers[i] = withClearParseErrors(h);
    });
  };
}

const PARSE_BINARY = /^parse binary: /;
const RESPONSE_LIMIT = 64 * 1024;

/**
 * connect-es answers a request body that does not decode as binary protobuf with Code.Internal
 * and the decoder's text ("parse binary: premature EOF"): HTTP 500 over Connect, grpc-status 13
 * over gRPC-web. It is the caller's bad input, so this turns exactly that error into
 * invalid_argument / INVALID_ARGUMENT with a fixed message. Unary responses are small; buffering
 * them costs nothing.
 */
function withClearParseErrors(handler: UniversalHandler): UniversalHandler {
  const message = malformedRequestMessage(handler.method.input.typeName);
  const wrapped = async (request: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const response = await handler(request);
    const type = response.header?.get("content-type") ?? "";
    if (!response.body || !(type.startsWith("application/json") || type.startsWith("application/grpc-web"))) {
      return response;
    }
    const bytes = await readAllBytes(response.body, RESPONSE_LIMIT);
    const body = (b: Uint8Array) => ({ ...response, body: createAsyncIterable([b]) });
    if (type.startsWith("application/json")) {
      if (response.status !== 500) return body(bytes);
      const error = JSON.parse(new TextDecoder().decode(bytes)) as { code?: string; message?: string };
      if (error.code !== "internal" || !PARSE_BINARY.test(error.message ?? "")) return body(bytes);
      const fixed = new TextEncoder().encode(JSON.stringify({ code: "invalid_argument", message }));
      response.header?.set("content-length", String(fixed.byteLength));
      return { ...body(fixed), status: 400 };
    }
    return body(fixGrpcWebTrailer(bytes, message));
  };
  return Object.assign(wrapped, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

/** Rewrites a gRPC-web trailer frame "grpc-status: 13, grpc-message: parse binary: …" to INVALID_ARGUMENT. */
function fixGrpcWebTrailer(bytes: Uint8Array, message: string): Uint8Array {
  const frames: Uint8Array[] = [];
  let changed = false;
  for (let at = 0; at + 5 <= bytes.byteLength; ) {
    const flags = bytes[at] as number;
    const length = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getUint32(0);
    const data = bytes.subarray(at + 5, at + 5 + length);
    at += 5 + length;
    if ((flags & 0x80) !== 0) {
      const trailer = parseTrailer(new TextDecoder().decode(data));
      if (
        trailer.get("grpc-status") === "13" &&
        PARSE_BINARY.test(decodeURIComponent(trailer.get("grpc-message") ?? ""))
      ) {
        const text = `grpc-message: ${encodeURIComponent(message)}\r\ngrpc-status: 3\r\n`;
        frames.push(encodeEnvelope(flags, new TextEncoder().encode(text)));
        changed = true;
        continue;
      }
    }
    frames.push(encodeEnvelope(flags, data));
  }
  if (!changed) return bytes;
  const out = new Uint8Array(frames.reduce((n, f) => n + f.byteLength, 0));
  let offset = 0;
  for (const f of frames) {
    out.set(f, offset);
    offset += f.byteLength;
  }
  return out;
}

function parseTrailer(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\r\n")) {
    const at = line.indexOf(":");
    if (at > 0) out.set(line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim());
  }
  return out;
}

function callContext(context: HandlerContext) {
  const credentials = readCredentials((name) => context.requestHeader.get(name) ?? undefined);
  return { credentials, signal: context.signal };
}

type NodeHandlerFn = ReturnType<typeof connectNodeAdapter>;

export interface ConnectHandlerOptions {
  maxBodyBytes: number;
  /** Serves whatever is not a Connect route. */
  fallback: NonNullable<ConnectNodeAdapterOptions["fallback"]>;
}

export function createConnectHandler(
  handler: SyncHandler,
  { maxBodyBytes, fallback }: ConnectHandlerOptions,
): NodeHandlerFn {
  return connectNodeAdapter({ routes: connectRoutes(handler), readMaxBytes: maxBodyBytes, fallback });
}
