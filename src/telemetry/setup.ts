import type { IncomingMessage, ServerResponse } from "node:http";
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
import { AlwaysOffSampler, NoopSpanProcessor, type Sampler, type SpanProcessor } from "@opentelemetry/sdk-trace-base";

/**
 * OpenTelemetry, set up once at process start (bin/vaultplus.js requires this before
 * anything instrumented loads). Configured by the standard OTEL_* variables:
 * - traces go to OTLP only when an OTLP endpoint or OTEL_TRACES_EXPORTER is set, over
 *   OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf, http/json or grpc);
 * - with nothing configured, spans are not recorded (AlwaysOff unless OTEL_TRACES_SAMPLER
 *   says otherwise) yet still get ids, so logs and sync runs carry a trace id and an
 *   incoming traceparent still travels on to the Access API: near-zero cost;
 * - metrics always feed /metrics (Prometheus text) and also OTLP when configured.
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
  const tracesConfigured =
    has("OTEL_EXPORTER_OTLP_ENDPOINT") || has("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || has("OTEL_TRACES_EXPORTER");
  const metricsConfigured = has("OTEL_EXPORTER_OTLP_ENDPOINT") || has("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");

  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const metricReaders: MetricReader[] = [prometheus];
  if (metricsConfigured && env.OTEL_METRICS_EXPORTER !== "none") {
    metricReaders.push(new PeriodicExportingMetricReader({ exporter: otlpMetricExporter(env) }));
  }

  let spanProcessors = options.spanProcessors;
  let sampler = options.sampler;
  if (!spanProcessors && !tracesConfigured) {
    spanProcessors = [new NoopSpanProcessor()];
    if (!has("OTEL_TRACES_SAMPLER")) sampler = new AlwaysOffSampler();
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
      new UndiciInstrumentation(),
      new MySQL2Instrumentation(),
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
