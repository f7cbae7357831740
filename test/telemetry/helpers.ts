import { context, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { suppressTracing } from "@opentelemetry/core";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { spans } from "../support/telemetry";

/** A caller's W3C trace context, as a client outside this process would send it. */
export const CALLER = {
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  spanId: "00f067aa0ba902b7",
  traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
};

/**
 * Runs a client call with this process's own client instrumentation (fetch, grpc-js) out of
 * the way, so the request carries exactly the headers or metadata the test sets: like curl
 * or a client in another process would send them.
 */
export function asExternalClient<T>(call: () => Promise<T>): Promise<T> {
  return context.with(suppressTracing(context.active()), call);
}

export const spanId = (s: ReadableSpan): string => s.spanContext().spanId;
export const traceIdOf = (s: ReadableSpan): string => s.spanContext().traceId;
export const parentId = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;

/** Exported spans of one trace. */
export function traceSpans(traceId: string): ReadableSpan[] {
  return spans.getFinishedSpans().filter((s) => traceIdOf(s) === traceId);
}

export function childrenOf(all: readonly ReadableSpan[], parent: ReadableSpan): ReadableSpan[] {
  return all.filter((s) => parentId(s) === spanId(parent));
}

/** The one span of that name (throws when there are none or several). */
export function only(all: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = all.filter((s) => s.name === name);
  if (found.length !== 1) {
    throw new Error(`expected one span "${name}", found ${found.length}: ${all.map((s) => s.name).join(", ")}`);
  }
  return found[0] as ReadableSpan;
}

/**
 * Waits until a span matching `predicate` has ended (a server span ends when its response
 * has been written, which a client may see a moment earlier).
 */
export async function waitForSpan(predicate: (s: ReadableSpan) => boolean, timeoutMs = 5000): Promise<ReadableSpan> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = spans.getFinishedSpans().find(predicate);
    if (found) return found;
    if (Date.now() > until) {
      const names = spans.getFinishedSpans().map((s) => s.name);
      throw new Error(`no such span within ${timeoutMs} ms; have: ${names.join(", ")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The chain of parent span ids from `span` up to the root of what is exported. */
export function ancestry(all: readonly ReadableSpan[], span: ReadableSpan): string[] {
  const byId = new Map(all.map((s) => [spanId(s), s]));
  const chain: string[] = [];
  let parent = parentId(span);
  while (parent) {
    chain.push(parent);
    parent = byId.get(parent) ? parentId(byId.get(parent) as ReadableSpan) : undefined;
  }
  return chain;
}

/** The knex spans' "operation table" pairs, in start order. */
export function dbOperations(all: readonly ReadableSpan[]): string[] {
  return byStart(all.filter((s) => s.attributes["knex.version"] !== undefined)).map((s) =>
    `${s.attributes["db.operation.name"]} ${s.attributes["db.collection.name"] ?? ""}`.trim(),
  );
}

export function byStart(all: readonly ReadableSpan[]): ReadableSpan[] {
  return [...all].sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
}

const KIND = ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];

/** An indented picture of a trace: one span a line, children under their parent, by start time. */
export function renderTree(all: readonly ReadableSpan[], describe: (s: ReadableSpan) => string = () => ""): string {
  const ids = new Set(all.map(spanId));
  const roots = all.filter((s) => !parentId(s) || !ids.has(parentId(s) as string));
  const lines: string[] = [];
  const walk = (s: ReadableSpan, depth: number) => {
    const status = s.status.code === SpanStatusCode.ERROR ? " ERROR" : "";
    const extra = describe(s);
    lines.push(`${"  ".repeat(depth)}${s.name}  (${KIND[s.kind]}${status})${extra ? `  ${extra}` : ""}`);
    for (const child of byStart(childrenOf(all, s))) walk(child, depth + 1);
  };
  for (const root of byStart(roots)) walk(root, 0);
  return lines.join("\n");
}

export { SpanKind, SpanStatusCode, spans };
