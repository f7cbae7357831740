/**
 * google.api.http path templates, the subset this gateway needs: literal segments and
 * single-segment variables (`{name}` or `{name=*}`). Anything else fails at start-up,
 * never at request time.
 */
export interface PathTemplate {
  readonly template: string;
  /** Field paths bound by the template, in order. */
  readonly variables: readonly string[];
  /** The variables' percent-decoded values, or null when the path does not match. */
  match(path: string): Record<string, string> | null;
}

type Segment = { literal: string } | { variable: string };

const VARIABLE = /^\{([A-Za-z_][A-Za-z0-9_]*)(?:=\*)?\}$/;
const LITERAL = /^[A-Za-z0-9._~!$&'()*+,;=:@%-]+$/;

export class PathTemplateError extends Error {}

/** Thrown by match() for a segment that is not valid percent-encoding. */
export class PathDecodeError extends Error {}

export function compilePathTemplate(template: string): PathTemplate {
  if (!template.startsWith("/")) throw new PathTemplateError(`path template must start with "/": ${template}`);
  const segments: Segment[] = template
    .slice(1)
    .split("/")
    .map((raw) => {
      const variable = VARIABLE.exec(raw);
      if (variable?.[1]) return { variable: variable[1] };
      if (raw !== "*" && raw !== "**" && LITERAL.test(raw) && !raw.includes(":")) return { literal: raw };
      throw new PathTemplateError(`unsupported path template segment "${raw}" in ${template}`);
    });
  const variables = segments.flatMap((s) => ("variable" in s ? [s.variable] : []));
  if (new Set(variables).size !== variables.length) {
    throw new PathTemplateError(`path template binds a variable twice: ${template}`);
  }

  return {
    template,
    variables,
    match(path) {
      if (!path.startsWith("/")) return null;
      const parts = path.slice(1).split("/");
      if (parts.length !== segments.length) return null;
      const values: Record<string, string> = {};
      for (const [i, segment] of segments.entries()) {
        const part = parts[i] as string;
        if ("literal" in segment) {
          if (part !== segment.literal) return null;
        } else {
          values[segment.variable] = decodeSegment(part);
        }
      }
      return values;
    },
  };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new PathDecodeError(`path segment "${segment}" is not valid percent-encoding`);
  }
}
