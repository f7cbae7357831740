import { z } from "zod";

/**
 * Configuration from the environment (SPEC §5). Bad configuration stops start-up
 * with one line naming the variable (ConfigError.message).
 */

export class ConfigError extends Error {
  override name = "ConfigError";
}

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

const schema = z.object({
  VAULTPLUS_DATABASE_URL: z
    .string()
    .regex(/^(mysql:\/\/.+|sqlite:.+)$/, "must be mysql://user:pass@host:port/db or sqlite:PATH")
    .default("sqlite:.vaultplus/vaultplus.db"),
  VAULTPLUS_UPSTREAM_URL: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional(),
  VAULTPLUS_UPSTREAM_API_KEY: z.string().min(1, "must not be empty").optional(),
  VAULTPLUS_HTTP_PORT: port.default(8080),
  VAULTPLUS_GRPC_PORT: port.default(50051),
  VAULTPLUS_HOST: z.string().min(1).default("0.0.0.0"),
  VAULTPLUS_MAX_LIST_ITEMS: positiveInt.default(10000),
  VAULTPLUS_UPSTREAM_PAGE_SIZE: z.coerce.number().int().min(1).max(40).default(40),
  VAULTPLUS_UPSTREAM_TIMEOUT_MS: positiveInt.default(10000),
  VAULTPLUS_UPSTREAM_DEADLINE_MS: positiveInt.default(60000),
  VAULTPLUS_DB_TIMEOUT_MS: positiveInt.default(10000),
  VAULTPLUS_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export interface Config {
  databaseUrl: string;
  upstreamUrl: string | undefined;
  upstreamApiKey: string | undefined;
  httpPort: number;
  grpcPort: number;
  host: string;
  maxListItems: number;
  upstreamPageSize: number;
  upstreamTimeoutMs: number;
  upstreamDeadlineMs: number;
  dbTimeoutMs: number;
  logLevel: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue?.path[0] ?? "configuration");
    throw new ConfigError(`invalid configuration: ${variable} ${issue?.message ?? "is invalid"}`);
  }
  const c = parsed.data;
  return {
    databaseUrl: c.VAULTPLUS_DATABASE_URL,
    upstreamUrl: c.VAULTPLUS_UPSTREAM_URL,
    upstreamApiKey: c.VAULTPLUS_UPSTREAM_API_KEY,
    httpPort: c.VAULTPLUS_HTTP_PORT,
    grpcPort: c.VAULTPLUS_GRPC_PORT,
    host: c.VAULTPLUS_HOST,
    maxListItems: c.VAULTPLUS_MAX_LIST_ITEMS,
    upstreamPageSize: c.VAULTPLUS_UPSTREAM_PAGE_SIZE,
    upstreamTimeoutMs: c.VAULTPLUS_UPSTREAM_TIMEOUT_MS,
    upstreamDeadlineMs: c.VAULTPLUS_UPSTREAM_DEADLINE_MS,
    dbTimeoutMs: c.VAULTPLUS_DB_TIMEOUT_MS,
    logLevel: c.VAULTPLUS_LOG_LEVEL,
  };
}

/** Serving needs an upstream; the local mode supplies its simulator instead. */
export function requireUpstream(config: Config): { url: string; apiKey: string } {
  if (!config.upstreamUrl) throw new ConfigError("invalid configuration: VAULTPLUS_UPSTREAM_URL is required to serve");
  if (!config.upstreamApiKey) {
    throw new ConfigError("invalid configuration: VAULTPLUS_UPSTREAM_API_KEY is required to serve");
  }
  return { url: config.upstreamUrl, apiKey: config.upstreamApiKey };
}
