import { isSpanContextValid, trace } from "@opentelemetry/api";
import pino, { type Logger } from "pino";

export type { Logger };

/**
 * Structured JSON logs with the active trace id on every line. Credentials are never
 * passed to the logger; the redaction paths are a second line of defence.
 */
export function createLogger(level = "info", destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "vaultplus" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          "apiKey",
          "apikey",
          "*.apiKey",
          "*.apikey",
          "headers.apikey",
          "*.headers.apikey",
          "upstreamApiKey",
          "url",
          "*.url",
        ],
        censor: "[redacted]",
      },
      mixin() {
        const ctx = trace.getActiveSpan()?.spanContext();
        return ctx && isSpanContextValid(ctx) ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
      },
    },
    destination,
  );
}
