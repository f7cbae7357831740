import type { DescService, Message } from "@bufbuild/protobuf";
import {
  type Metadata,
  type Server,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { VaultPlusLists } from "../../../gen/vaultplus/v1/lists_pb";
import { readCredentials, type SyncHandler, unaryImplFor, vaultPlusListsImpl } from "../handler";
import { mapError } from "../status-table";
import { grpcServiceDefinition, MalformedRequest } from "./service-definition";

/**
 * Metadata a call may carry, as the REST gateway's 16 KiB of headers: grpc-js has no server-side
 * bound of its own (Node's HTTP/2 layer lets far more through), so calls over it are refused
 * before any work.
 */
export const GRPC_MAX_METADATA_BYTES = 16 * 1024;

/** Registers VaultPlusLists on a grpc-js server. */
export function registerVaultPlusLists(server: Pick<Server, "addService">, handler: SyncHandler): void {
  server.addService(
    grpcServiceDefinition(VaultPlusLists),
    grpcImplementation(VaultPlusLists, vaultPlusListsImpl(handler)),
  );
}

function grpcImplementation(service: DescService, impl: object): UntypedServiceImplementation {
  const handlers: UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const unary = unaryImplFor(impl, method);
    handlers[method.name] = (call: ServerUnaryCall<Message, Message>, callback: sendUnaryData<Message>) => {
      const request: unknown = call.request;
      if (request instanceof MalformedRequest) {
        callback({ code: status.INVALID_ARGUMENT, details: request.message });
        return;
      }
      if (metadataBytes(call.metadata) > GRPC_MAX_METADATA_BYTES) {
        callback({
          code: status.RESOURCE_EXHAUSTED,
          details: `request metadata is larger than the limit of ${GRPC_MAX_METADATA_BYTES} bytes`,
        });
        return;
      }
      const abort = new AbortController();
      call.on("cancelled", () => abort.abort());
      const credentials = readCredentials((name) => firstString(call.metadata, name));
      unary(call.request, { credentials, signal: abort.signal }).then(
        (response) => callback(null, response),
        (err: unknown) => {
          const mapped = mapError(err);
          // name and message too: the grpc-js instrumentation takes the server span's status
          // message from them (the same safe text as details).
          callback({ code: mapped.grpc, details: mapped.message, name: "SyncError", message: mapped.message });
        },
      );
    };
  }
  return handlers;
}

function firstString(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === "string" ? value : undefined;
}

/** Key and value bytes of every entry, as they travel (before HPACK). */
function metadataBytes(metadata: Metadata): number {
  let total = 0;
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values)
      total += key.length + (typeof value === "string" ? Buffer.byteLength(value) : value.length);
  }
  return total;
}
