import { ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { type ConnectNodeAdapterOptions, connectNodeAdapter } from "@connectrpc/connect-node";
import { VaultPlusLists } from "../../../gen/vaultplus/v1/lists_pb";
import { readCredentials, type SyncHandler, vaultPlusListsImpl } from "../handler";
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
  };
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
