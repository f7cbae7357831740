import type { DescService, Message } from "@bufbuild/protobuf";
import type { Metadata, Server, ServerUnaryCall, sendUnaryData, UntypedServiceImplementation } from "@grpc/grpc-js";
import { VaultPlusLists } from "../../../gen/vaultplus/v1/lists_pb";
import { readCredentials, type SyncHandler, unaryImplFor, vaultPlusListsImpl } from "../handler";
import { mapError } from "../status-table";
import { grpcServiceDefinition } from "./service-definition";

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
      const abort = new AbortController();
      call.on("cancelled", () => abort.abort());
      const credentials = readCredentials((name) => firstString(call.metadata, name));
      unary(call.request, { credentials, signal: abort.signal }).then(
        (response) => callback(null, response),
        (err: unknown) => {
          const mapped = mapError(err);
          callback({ code: mapped.grpc, details: mapped.message });
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
