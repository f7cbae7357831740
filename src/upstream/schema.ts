import { z } from "zod";
import type { UpstreamMedia } from "../domain/media";

/**
 * One page of the Access API (SPEC §4): `{"list":[item…],"hasMore":bool}`.
 * Unknown fields are stripped (zod's default), `counters` included: it is volatile
 * and nothing downstream reads it, so accepting anything there is the same as leaving
 * it out. File URLs are signed: they stay in memory and never reach a message.
 */

/** Optional upstream fields may also come as null: both mean "absent". */
function optional<T extends z.ZodType>(schema: T) {
  return schema.nullish().transform((value) => value ?? undefined);
}

const file = z.object({
  url: z.string(),
  width: optional(z.number()),
  height: optional(z.number()),
  size: optional(z.number()),
});

const media = z.object({
  // zod's int() also bounds the id to the safe-integer range.
  id: z.number().int().nonnegative(),
  type: z.enum(["photo", "video", "gif", "audio"]),
  convertedToVideo: z.boolean(),
  canView: z.boolean(),
  hasError: z.boolean(),
  isReady: z.boolean(),
  createdAt: z.string(),
  duration: optional(z.number()),
  hasCustomPreview: optional(z.boolean()),
  files: optional(
    z.object({
      full: optional(file),
      thumb: optional(file),
      preview: optional(file),
      squarePreview: optional(file),
    }),
  ),
});

export interface UpstreamPage {
  list: UpstreamMedia[];
  hasMore: boolean;
}

export const pageSchema: z.ZodType<UpstreamPage> = z.object({
  list: z.array(media),
  hasMore: z.boolean(),
});

export type PageParseResult = { ok: true; page: UpstreamPage } | { ok: false; problem: string };

/**
 * Validates a parsed JSON body. On failure `problem` names the first bad field,
 * e.g. "list[3].id is not a number"; it never quotes the received value, which
 * may be a signed URL.
 */
export function parsePage(body: unknown): PageParseResult {
  const result = pageSchema.safeParse(body, { error: describeIssue });
  if (result.success) return { ok: true, page: result.data };
  const issue = result.error.issues[0];
  if (!issue) return { ok: false, problem: "the body is invalid" };
  const where = issue.path.length === 0 ? "the body" : formatPath(issue.path);
  return { ok: false, problem: `${where} ${issue.message}` };
}

// Messages are built from the schema side only (expected types, allowed values).
function describeIssue(issue: z.core.$ZodRawIssue): string {
  if (issue.input === undefined) return "is missing";
  switch (issue.code) {
    case "invalid_type": {
      const expected = issue.expected === "int" ? "integer" : String(issue.expected);
      return `is not ${/^[aeiou]/.test(expected) ? "an" : "a"} ${expected}`;
    }
    case "too_small":
      return issue.minimum === 0 ? "is negative" : "is too small";
    case "too_big":
      return "is too large";
    case "invalid_value":
      return `is not one of ${issue.values.map(String).join(", ")}`;
    default:
      return "is invalid";
  }
}

function formatPath(path: PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}
