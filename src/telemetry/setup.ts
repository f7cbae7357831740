import type { IncomingMessage, ServerResponse } from "node:http";
import { isSpanContextValid } from "@opentelemetry/api";
import { OTLPMetricExporter as OtlpGrpcMetricExporter } from "@opentelemetry/exporter-metrics-otlp-grpc";
import { OTLPMetricExporter as OtlpJsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as OtlpProtoMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { GrpcInstrumentation } from "@opentelemetry/instrumentation-grpc";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { KnexInstrumentation } from "@opentelemetry/instrumentation-knex";
import { MySQL2Instrumentation } from "@opentelemetry/instrumentation-mysql2";
import { UndiciInstrumentation } from "@opentelemetry/instrumentation-undici";
import { type MetricReader, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { NodeSDK } from "@opentelemetry/sdk-node";
import {
  AlwaysOffSampler,
  NoopSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";

/**
 * OpenTelemetry, set up once at process start (bin/vaultplus.js requires this before
 * anything instrumented loads). Configured by the standard OTEL_* variables:
 * - traces go to OTLP only when an OTLP endpoint or OTEL_TRACES_EXPORTER (other than
 *   "none") is set, over OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf, http/json or grpc);
 * - with nothing configured, nothing is exported and our own traces are not sampled
 *   (parent-based always-off unless OTEL_TRACES_SAMPLER says otherwise), yet spans still
 *   get ids, so logs and sync runs carry a trace id and an incoming traceparent travels
 *   on to the Access API with the caller's sampling decision: near-zero cost;
 * - metrics always feed /metrics (Prometheus text) and also OTLP when configured
 *   (OTEL_METRIC_EXPORT_INTERVAL, OTEL_METRICS_EXPORTER=none);
 * - OTEL_SDK_DISABLED=true turns all of it off (/metrics then answers 503).
 */

export interface Telemetry {
  /** Serves the Prometheus text exposition of every metric. */
  metricsHandler(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

export interface TelemetryOptions {
  env?: NodeJS.ProcessEnv;
  /** Tests pass an in-memory exporter's processor here. */
  spanProcessors?: SpanProcessor[];
  sampler?: Sampler;
}

let current: Telemetry | undefined;

export function startTelemetry(options: TelemetryOptions = {}): Telemetry {
  if (current) return current;
  const env = options.env ?? process.env;
  const has = (name: string) => Boolean(env[name]?.trim());
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") {
    // The operator turned OpenTelemetry off altogether: no SDK, so no metrics to serve either
    // (rather than a 200 whose body is an export error).
    current = {
      metricsHandler: (_req, res) => {
        res.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
        res.end("metrics are off: OTEL_SDK_DISABLED=true\n");
      },
      shutdown: async () => {},
    };
    return current;
  }
  const tracesConfigured =
    env.OTEL_TRACES_EXPORTER?.trim() !== "none" &&
    (has("OTEL_EXPORTER_OTLP_ENDPOINT") || has("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || has("OTEL_TRACES_EXPORTER"));
  const metricsConfigured = has("OTEL_EXPORTER_OTLP_ENDPOINT") || has("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");

  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const metricReaders: MetricReader[] = [prometheus];
  if (metricsConfigured && env.OTEL_METRICS_EXPORTER !== "none") {
    // OTEL_METRIC_EXPORT_INTERVAL/_TIMEOUT (NodeSDK reads them only for readers it makes itself).
    const exportIntervalMillis = millisFromEnv(env.OTEL_METRIC_EXPORT_INTERVAL) ?? 60_000;
    const exportTimeoutMillis = Math.min(millisFromEnv(env.OTEL_METRIC_EXPORT_TIMEOUT) ?? 30_000, exportIntervalMillis);
    metricReaders.push(
      new PeriodicExportingMetricReader({
        exporter: otlpMetricExporter(env),
        exportIntervalMillis,
        exportTimeoutMillis,
      }),
    );
  }

  let spanProcessors = options.spanProcessors;
  let sampler = options.sampler;
  if (!spanProcessors && !tracesConfigured) {
    spanProcessors = [new NoopSpanProcessor()];
    // Parent-based: a caller's sampling decision still travels on to the Access API.
    if (!has("OTEL_TRACES_SAMPLER")) sampler = new ParentBasedSampler({ root: new AlwaysOffSampler() });
  }

  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME?.trim() || "vaultplus-list-sync",
    ...(spanProcessors ? { spanProcessors } : {}),
    ...(sampler ? { sampler } : {}),
    metricReaders,
    // pino writes the logs; the OTel logs pipeline stays empty.
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        // Probes and scrapes would drown the sync traces.
        ignoreIncomingRequestHook: (req) => /^\/(healthz|readyz|metrics)\b/.test(req.url ?? ""),
      }),
      new GrpcInstrumentation({ ignoreGrpcMethods: [/^Check$/, /^Watch$/] }),
      new UndiciInstrumentation({
        // The upstream client injects the traceparent of its fetch span itself (so the trace
        // travels on even without this instrumentation); the instrumentation then *appends*
        // its own, and the Access API would get two values, i.e. an invalid traceparent.
        // Drop the caller's copy first: the per-request client span's traceparent wins.
        requestHook: (span, request) => {
          if (isSpanContextValid(span.spanContext())) removeHeaders(request, PROPAGATION_HEADERS);
        },
      }),
      new MySQL2Instrumentation({
        // Statements are recorded without their values (knex binds every value, but a raw
        // statement could carry one) and bounded in size: a batched insert of 500 rows would
        // otherwise put tens of kilobytes of "(?, ?, …)" on every span.
        maskStatement: true,
        maskStatementHook: maskSql,
      }),
      new KnexInstrumentation(),
    ],
  });
  sdk.start();
  current = {
    metricsHandler: (req, res) => prometheus.getMetricsRequestHandler(req, res),
    shutdown: () => sdk.shutdown(),
  };
  return current;
}

export function telemetry(): Telemetry | undefined {
  return current;
}

function otlpMetricExporter(env: NodeJS.ProcessEnv) {
  const protocol = (
    env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ??
    env.OTEL_EXPORTER_OTLP_PROTOCOL ??
    "http/protobuf"
  ).trim();
  if (protocol === "grpc") return new OtlpGrpcMetricExporter();
  if (protocol === "http/json") return new OtlpJsonMetricExporter();
  return new OtlpProtoMetricExporter();
}

function millisFromEnv(value: string | undefined): number | undefined {
  const n = Number(value?.trim() || Number.NaN);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Headers the W3C trace-context propagator writes. */
const PROPAGATION_HEADERS = new Set(["traceparent", "tracestate"]);

/** Removes headers from an undici request (headers are [k, v, …] in undici 6+, a raw string in 5). */
function removeHeaders(request: { headers: string | (string | string[])[] }, names: Set<string>): void {
  const { headers } = request;
  if (Array.isArray(headers)) {
    for (let i = headers.length - 2; i >= 0; i -= 2) {
      if (names.has(String(headers[i]).toLowerCase())) headers.splice(i, 2);
    }
  } else if (typeof headers === "string") {
    request.headers = headers
      .split("\r\n")
      .filter((line) => !names.has(line.slice(0, line.indexOf(":")).trim().toLowerCase()))
      .join("\r\n");
  }
}

/** Longest db.query.text kept on a mysql2 span (the knex instrumentation's default bound). */
const MAX_QUERY_TEXT = 1022;

/** Literals become "?" (as the instrumentation's default mask does), then the text is bounded. */
export function maskSql(sql: string): string {
  const masked = sql.replace(/(["'])(?:\\.|(?!\1).)*\1/g, "?").replace(/\b\d+\b/g, "?");
  return masked.length > MAX_QUERY_TEXT ? `${masked.slice(0, MAX_QUERY_TEXT - 1)}…` : masked;
}
