import { Server, ServerCredentials } from "@grpc/grpc-js";
import type { SyncHandler } from "../handler";
import { GrpcHealth } from "./health";
import { createReflectionService } from "./reflection";
import { registerVaultPlusLists } from "./routes";

export interface GrpcServerOptions {
  handler: SyncHandler;
  /** Pass one to flip health from outside (readiness); otherwise a SERVING one is made. */
  health?: GrpcHealth;
}

export interface GrpcServerParts {
  server: Server;
  health: GrpcHealth;
}

/** Request messages are tiny; 64 KiB bounds what one call can make the server buffer. */
export const GRPC_MAX_RECEIVE_BYTES = 64 * 1024;
export { GRPC_MAX_METADATA_BYTES } from "./routes";

export function createGrpcServer({ handler, health = new GrpcHealth() }: GrpcServerOptions): GrpcServerParts {
  const server = new Server({ "grpc.max_receive_message_length": GRPC_MAX_RECEIVE_BYTES });
  registerVaultPlusLists(server, handler);
  health.implementation.addToServer(server);
  createReflectionService().addToServer(server);
  return { server, health };
}

export interface RunningGrpcServer extends GrpcServerParts {
  port: number;
  /** NOT_SERVING first, then drain in-flight calls for at most graceMs, then cut. */
  close(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(
  options: GrpcServerOptions,
  { host, port }: { host: string; port: number },
): Promise<RunningGrpcServer> {
  const parts = createGrpcServer(options);
  const { server, health } = parts;
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${formatHost(host)}:${port}`, ServerCredentials.createInsecure(), (err, actual) =>
      err ? reject(err) : resolve(actual),
    );
  });
  let closing: Promise<void> | undefined;
  const close = (graceMs = 10_000): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      health.setServing(false);
      const timer = setTimeout(() => server.forceShutdown(), graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return closing;
  };
  return { ...parts, port: bound, close };
}

/** IPv6 literals need brackets in a target. */
function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
