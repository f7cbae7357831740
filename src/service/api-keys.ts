import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * API keys look like `vp_<id>_<secret>`: the id finds the row, the secret is checked
 * against its stored sha256. The secret is 256 random bits, so a fast hash is
 * enough (no password stretching needed) and the comparison is constant-time.
 */

const PREFIX = "vp_";
const KEY_ID = /^[0-9a-f]{16}$/;
const SECRET = /^[A-Za-z0-9_-]{43}$/;

export interface GeneratedKey {
  id: string;
  /** The whole key as the client sends it; shown once, never stored. */
  token: string;
  secretHash: string;
}

export function generateApiKey(): GeneratedKey {
  const id = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { id, token: `${PREFIX}${id}_${secret}`, secretHash: hashSecret(secret) };
}

export function parseApiKey(token: string): { id: string; secret: string } | null {
  if (!token.startsWith(PREFIX)) return null;
  const id = token.slice(PREFIX.length, PREFIX.length + 16);
  const secret = token.slice(PREFIX.length + 17);
  if (token[PREFIX.length + 16] !== "_" || !KEY_ID.test(id) || !SECRET.test(secret)) return null;
  return { id, secret };
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const actual = Buffer.from(hashSecret(secret), "hex");
  const expected = Buffer.from(storedHash, "hex");
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}
