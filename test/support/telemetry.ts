import {
  AlwaysOnSampler,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { startTelemetry } from "../../src/telemetry/setup";

/**
 * OpenTelemetry for the test process, registered before any test file loads grpc-js,
 * node:http, knex or mysql2 (scripts/test.js and .mocharc.json require this file first),
 * exactly as bin/vaultplus.js does for the real process. Every span ends up in `spans`,
 * an in-memory exporter; tests that read it reset it first.
 */

export const spans = new InMemorySpanExporter();

export const testTelemetry = startTelemetry({
  env: {},
  spanProcessors: [new SimpleSpanProcessor(spans)],
  sampler: new AlwaysOnSampler(),
});

export type { ReadableSpan };

/**
 * Root hooks (mocha's `rootHooks`, also picked up from `--require`): every test starts
 * with an empty exporter, so spans do not pile up over the whole run.
 */
export const mochaHooks = {
  beforeEach(): void {
    spans.reset();
  },
};
