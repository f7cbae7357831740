import type { IncomingMessage, ServerResponse } from "node:http";
import {
  create,
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  getOption,
  hasOption,
  type JsonValue,
  type Message,
  mergeFromJson,
  ScalarType,
  toJson,
} from "@bufbuild/protobuf";
import { context } from "@opentelemetry/api";
import { getRPCMetadata, RPCType } from "@opentelemetry/core";
import { http } from "../../../gen/google/api/annotations_pb";
import type { HttpRule } from "../../../gen/google/api/http_pb";
import { VaultPlusLists } from "../../../gen/vaultplus/v1/lists_pb";
import { invalidArgument } from "../../domain/errors";
import { readCredentials, type SyncHandler, type UnaryImpl, unaryImplFor, vaultPlusListsImpl } from "../handler";
import { mapError } from "../status-table";
import { abortOnClientGone, HttpError, mediaType, readBody, sendError, sendJson } from "./io";
import { compilePathTemplate, PathDecodeError, type PathTemplate } from "./path-template";

/** One HTTP binding of one RPC, as its google.api.http rule declares it. */
export interface RestRoute {
  verb: string;
  template: PathTemplate;
  method: DescMethod;
  /** "*" (whole request), a top-level field name, or "" (no body). */
  body: string;
  /** "" (whole response) or a top-level field name. */
  responseBody: string;
  call: UnaryImpl;
  /** The template with JSON field names, as OpenAPI and the http.route span attribute write it. */
  httpRoute: string;
}

/** Every google.api.http binding (with additional_bindings) of every method; misconfiguration throws here. */
export function deriveRestRoutes(service: DescService, impl: object): RestRoute[] {
  const routes: RestRoute[] = [];
  for (const method of service.methods) {
    if (!hasOption(method, http)) continue;
    const rule = getOption(method, http);
    const call = unaryImplFor(impl, method);
    for (const binding of [rule, ...rule.additionalBindings]) routes.push(toRoute(method, binding, call));
  }
  return routes;
}

function toRoute(method: DescMethod, rule: HttpRule, call: UnaryImpl): RestRoute {
  const where = `${method.parent.typeName}.${method.name}`;
  const { pattern } = rule;
  if (pattern.case === undefined) throw new Error(`${where}: google.api.http rule has no pattern`);
  const [verb, path] =
    pattern.case === "custom"
      ? [pattern.value.kind.toUpperCase(), pattern.value.path]
      : [pattern.case.toUpperCase(), pattern.value];
  const template = compilePathTemplate(path);
  for (const variable of template.variables) {
    const field = fieldByName(method.input, variable, where);
    if (field.fieldKind !== "scalar" && field.fieldKind !== "enum") {
      throw new Error(`${where}: path variable {${variable}} must bind a singular scalar or enum field`);
    }
  }
  if (rule.body && rule.body !== "*") fieldByName(method.input, rule.body, where);
  if (rule.responseBody) fieldByName(method.output, rule.responseBody, where);
  const httpRoute = path.replace(
    /\{([A-Za-z_][A-Za-z0-9_]*)(?:=\*)?\}/g,
    (_m, name: string) => `{${fieldByName(method.input, name, where).jsonName}}`,
  );
  return { verb, template, method, body: rule.body, responseBody: rule.responseBody, call, httpRoute };
}

function fieldByName(message: DescMessage, name: string, where: string): DescField {
  const field = message.fields.find((f) => f.name === name);
  if (!field) throw new Error(`${where}: google.api.http names unknown field "${name}" of ${message.typeName}`);
  return field;
}

export interface RestOptions {
  maxBodyBytes: number;
}

/** Handles the request if a route's path matches (answering 405 for other verbs); false otherwise. */
export type RestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export function createRestHandler(routes: RestRoute[], { maxBodyBytes }: RestOptions): RestHandler {
  return async (req, res) => {
    const url = req.url ?? "/";
    const queryAt = url.indexOf("?");
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    const query = new URLSearchParams(queryAt < 0 ? "" : url.slice(queryAt + 1));

    const allowed = new Set<string>();
    try {
      for (const route of routes) {
        const vars = route.template.match(path);
        if (!vars) continue;
        if (route.verb !== req.method) {
          allowed.add(route.verb);
          continue;
        }
        await serve(route, vars, query, req, res, maxBodyBytes);
        return true;
      }
    } catch (err) {
      sendFailure(res, err);
      return true;
    }
    if (allowed.size === 0) return false;
    const allow = [...allowed].sort().join(", ");
    sendError(res, 405, `method ${req.method} is not allowed on ${path}; allowed: ${allow}`, { allow });
    return true;
  };
}

async function serve(
  route: RestRoute,
  vars: Record<string, string>,
  query: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
  maxBodyBytes: number,
): Promise<void> {
  // Names the HTTP server span "PUT /v2/vault-plus/lists/{listId}/sync" and sets http.route
  // (the node:http instrumentation reads this when the response ends).
  const rpc = getRPCMetadata(context.active());
  if (rpc?.type === RPCType.HTTP) rpc.route = route.httpRoute;
  const body = await readBody(req, maxBodyBytes);
  const text = body.toString("utf8").trim();
  const type = mediaType(req);
  // No content type is read as JSON: curl and fetch without headers still work.
  if (text && type !== undefined && type !== "application/json") {
    throw new HttpError(415, `unsupported content type "${type}": send application/json or no body`);
  }
  const request = decodeRequest(route, text, vars, query);
  const credentials = readCredentials((name) => firstHeader(req, name));
  const response = await route.call(request, { credentials, signal: abortOnClientGone(res) });
  const json = toJson(route.method.output, response, { alwaysEmitImplicit: true }) as Record<string, JsonValue>;
  sendJson(res, 200, route.responseBody ? json[jsonNameOf(route.method.output.fields, route.responseBody)] : json);
}

/** Transcoding as google.api.http defines it: body first, then path variables (they win), then query. */
function decodeRequest(route: RestRoute, text: string, vars: Record<string, string>, query: URLSearchParams): Message {
  const { input } = route.method;
  const message = create(input);
  const merge = (json: JsonValue, what: string) => {
    try {
      mergeFromJson(input, message, json, { ignoreUnknownFields: false });
    } catch (err) {
      throw invalidArgument(`invalid ${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  if (text) {
    if (!route.body) throw invalidArgument(`${route.verb} ${route.template.template} takes no request body`);
    let json: JsonValue;
    try {
      json = JSON.parse(text) as JsonValue;
    } catch {
      throw invalidArgument("request body is not valid JSON");
    }
    if (route.body === "*") {
      if (typeof json !== "object" || json === null || Array.isArray(json)) {
        throw invalidArgument("request body must be a JSON object");
      }
      merge(json, "request body");
    } else {
      merge({ [jsonNameOf(input.fields, route.body)]: json }, "request body");
    }
  }

  for (const [name, value] of Object.entries(vars)) {
    const field = input.fields.find((f) => f.name === name) as DescField;
    merge({ [field.jsonName]: scalarJson(field, value) }, `path variable {${name}}`);
  }

  // With body "*" every field not in the path comes from the body; query parameters bind nothing.
  if (route.body !== "*") {
    const bound = new Set([...Object.keys(vars), route.body]);
    for (const key of new Set(query.keys())) {
      const field = input.fields.find((f) => f.name === key || f.jsonName === key);
      if (!field || (field.fieldKind !== "scalar" && field.fieldKind !== "enum" && field.fieldKind !== "list")) {
        throw invalidArgument(`unknown query parameter "${key}"`);
      }
      if (bound.has(field.name)) continue;
      const values = query.getAll(key).map((v) => scalarJson(field, v));
      merge(
        { [field.jsonName]: field.fieldKind === "list" ? values : (values[0] as JsonValue) },
        `query parameter "${key}"`,
      );
    }
  }
  return message;
}

/** Path and query values are text; proto3 JSON already accepts text for numbers and enums, not for bools. */
function scalarJson(field: DescField, value: string): JsonValue {
  const isBool = (field.fieldKind === "scalar" || field.fieldKind === "list") && field.scalar === ScalarType.BOOL;
  if (isBool && (value === "true" || value === "false")) return value === "true";
  return value;
}

function jsonNameOf(fields: readonly DescField[], name: string): string {
  return fields.find((f) => f.name === name)?.jsonName ?? name;
}

function firstHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sendFailure(res: ServerResponse, err: unknown): void {
  if (err instanceof HttpError) {
    sendError(res, err.status, err.message, err.headers);
    return;
  }
  const mapped = mapError(err instanceof PathDecodeError ? invalidArgument(err.message) : err);
  sendError(res, mapped.http, mapped.message);
}

/** The REST gateway of VaultPlusLists, routed from its proto annotations. */
export function vaultPlusListsRestHandler(handler: SyncHandler, options: RestOptions): RestHandler {
  return createRestHandler(deriveRestRoutes(VaultPlusLists, vaultPlusListsImpl(handler)), options);
}
