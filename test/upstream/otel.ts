import { AsyncLocalStorage } from "node:async_hooks";
import {
  type Attributes,
  type Context,
  type ContextManager,
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  type SpanStatus,
  type TextMapPropagator,
  type TextMapSetter,
  TraceFlags,
  type Tracer,
  trace,
} from "@opentelemetry/api";

/**
 * Just enough OpenTelemetry for the upstream tests without an SDK: an
 * AsyncLocalStorage context manager, a W3C traceparent propagator, and a tracer
 * that records spans. Globals are registered only if nobody else did, and only
 * what was registered here is removed afterwards.
 */

class AlsContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.storage.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.storage.disable();
    return this;
  }
}

class TraceparentPropagator implements TextMapPropagator {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    const sc = trace.getSpanContext(ctx);
    if (!sc || !isSpanContextValid(sc)) return;
    setter.set(carrier, "traceparent", `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & 1).toString(16)}`);
  }
  extract(ctx: Context): Context {
    return ctx;
  }
  fields(): string[] {
    return ["traceparent"];
  }
}

export function useTestOtel(): void {
  let ownContext = false;
  let ownPropagator = false;
  before(() => {
    ownContext = context.setGlobalContextManager(new AlsContextManager());
    ownPropagator = propagation.setGlobalPropagator(new TraceparentPropagator());
  });
  after(() => {
    if (ownContext) context.disable();
    if (ownPropagator) propagation.disable();
  });
}

export const PARENT: SpanContext = {
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  spanId: "00f067aa0ba902b7",
  traceFlags: TraceFlags.SAMPLED,
};

/** Runs fn with PARENT as the active span context. */
export function withParentSpan<T>(fn: () => Promise<T>): Promise<T> {
  return context.with(trace.setSpanContext(context.active(), PARENT), fn);
}

export interface RecordedSpan {
  name: string;
  attributes: Attributes;
  events: Array<{ name: string; attributes: Attributes | undefined }>;
  status: SpanStatus | undefined;
  ended: boolean;
}

/** A tracer whose spans keep their name, attributes, events and status. */
export function recordingTracer(): { tracer: Tracer; spans: RecordedSpan[] } {
  const spans: RecordedSpan[] = [];
  let next = 1;
  const startSpan = (name: string, options?: { attributes?: Attributes }): Span => {
    const record: RecordedSpan = {
      name,
      attributes: { ...options?.attributes },
      events: [],
      status: undefined,
      ended: false,
    };
    spans.push(record);
    const spanContext: SpanContext = { ...PARENT, spanId: (next++).toString(16).padStart(16, "0") };
    const span: Span = {
      spanContext: () => spanContext,
      setAttribute(key, value) {
        if (value !== undefined) record.attributes[key] = value;
        return span;
      },
      setAttributes(attributes) {
        Object.assign(record.attributes, attributes);
        return span;
      },
      addEvent(eventName, attributes) {
        record.events.push({ name: eventName, attributes: attributes as Attributes | undefined });
        return span;
      },
      addLink: () => span,
      addLinks: () => span,
      setStatus(status) {
        record.status = status;
        return span;
      },
      updateName(newName) {
        record.name = newName;
        return span;
      },
      end() {
        record.ended = true;
      },
      isRecording: () => true,
      recordException: () => {},
    };
    return span;
  };
  const tracer = {
    startSpan,
    startActiveSpan(name: string, ...rest: unknown[]) {
      const fn = rest[rest.length - 1] as (span: Span) => unknown;
      const options = rest.length > 1 ? (rest[0] as { attributes?: Attributes }) : undefined;
      const span = startSpan(name, options);
      return context.with(trace.setSpan(context.active(), span), fn, undefined, span);
    },
  } as Tracer;
  return { tracer, spans };
}
