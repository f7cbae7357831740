import { invalidArgument } from "./errors";

const LIST_ID = /^[0-9]{1,20}$/;
const CONNECTION_ID = /^[A-Za-z0-9_-]{1,64}$/;
const ACCOUNT_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function isListId(value: unknown): value is string {
  return typeof value === "string" && LIST_ID.test(value);
}

export function isConnectionId(value: unknown): value is string {
  return typeof value === "string" && CONNECTION_ID.test(value);
}

export function isAccountId(value: unknown): value is string {
  return typeof value === "string" && ACCOUNT_ID.test(value);
}

export function requireListId(value: unknown): string {
  if (!isListId(value)) throw invalidArgument("listId must be 1-20 decimal digits, e.g. 28489180");
  return value;
}

export function requireAccountId(value: unknown): string {
  if (!isAccountId(value)) {
    throw invalidArgument("account id must be 1-64 characters of A-Z, a-z, 0-9, _ and -");
  }
  return value;
}

export const CONNECTION_REQUIRED_MESSAGE = "x-connection-id header is required";
/** One message for unknown, foreign, disabled and malformed connections: they must look the same. */
export const CONNECTION_INVALID_MESSAGE = "x-connection-id must name an active connection of this API key's account";
