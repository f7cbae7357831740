import { create, type DescMethod, type Message } from "@bufbuild/protobuf";
import { type SyncListRequest, type SyncListResponse, SyncListResponseSchema } from "../../gen/vaultplus/v1/lists_pb";
import type { Credentials } from "../service/auth";
import type { SyncService } from "../service/sync-service";

/** What transports need from the service; tests inject their own. */
export type SyncHandler = Pick<SyncService, "syncList">;

/** Metadata keys (gRPC) and header names (HTTP, case-insensitive): the same on every transport. */
export const API_KEY_HEADER = "apikey";
export const CONNECTION_ID_HEADER = "x-connection-id";

/** What a caller is told when its request bytes are not a protobuf message of the method's input type. */
export function malformedRequestMessage(typeName: string): string {
  return `request is not a valid ${typeName} message`;
}

/** Reads the credentials with a transport's own (case-insensitive) lookup. */
export function readCredentials(get: (name: string) => string | undefined): Credentials {
  return { apiKey: get(API_KEY_HEADER), connectionId: get(CONNECTION_ID_HEADER) };
}

/** What every transport knows about a call, once it has decoded the request. */
export interface CallContext {
  credentials: Credentials;
  signal?: AbortSignal;
}

export type UnaryImpl = (request: Message, call: CallContext) => Promise<Message>;

export interface VaultPlusListsImpl {
  syncList(request: SyncListRequest, call: CallContext): Promise<SyncListResponse>;
}

/** The service's methods in proto terms, once, so gRPC, REST and Connect only translate. */
export function vaultPlusListsImpl(handler: SyncHandler): VaultPlusListsImpl {
  return {
    async syncList(request, call) {
      const options = call.signal ? { signal: call.signal } : {};
      const { listId, counters } = await handler.syncList(request.listId, call.credentials, options);
      // Field by field, so nothing a handler adds to its result can leak into the response.
      return create(SyncListResponseSchema, {
        synced: true,
        listId,
        seen: counters.seen,
        addedItems: counters.addedItems,
        updatedItems: counters.updatedItems,
        removedItems: counters.removedItems,
        unchangedItems: counters.unchangedItems,
        adoptedItems: counters.adoptedItems,
      });
    },
  };
}

/** The implementation of one method, looked up from the descriptor; unary only, checked at start-up. */
export function unaryImplFor(impl: object, method: DescMethod): UnaryImpl {
  const fn = (impl as Record<string, unknown>)[method.localName];
  if (method.methodKind !== "unary") {
    throw new Error(`${method.parent.typeName}/${method.name}: only unary methods are served`);
  }
  if (typeof fn !== "function") {
    throw new Error(`${method.parent.typeName}/${method.name}: no implementation`);
  }
  return fn.bind(impl) as UnaryImpl;
}
