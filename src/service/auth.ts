import { invalidArgument, unauthenticated } from "../domain/errors";
import { CONNECTION_INVALID_MESSAGE, CONNECTION_REQUIRED_MESSAGE, isConnectionId } from "../domain/ids";
import type { CredentialStore } from "../store/types";
import { parseApiKey, secretMatches } from "./api-keys";

/** Credentials as every transport carries them: `apikey` and `x-connection-id`. */
export interface Credentials {
  apiKey?: string | undefined;
  connectionId?: string | undefined;
}

export interface Principal {
  accountId: string;
  connectionId: string;
}

/**
 * The API key is checked before the connection, so an unauthenticated caller learns
 * nothing about connections; unknown, foreign, disabled and malformed connections
 * all get the same answer.
 */
export async function authorize(store: CredentialStore, credentials: Credentials): Promise<Principal> {
  const parsed = credentials.apiKey ? parseApiKey(credentials.apiKey.trim()) : null;
  if (!parsed) throw unauthenticated();
  const key = await store.findApiKey(parsed.id);
  if (!key || !secretMatches(parsed.secret, key.secretHash) || key.revoked || !key.scopes.includes("ACCOUNT")) {
    throw unauthenticated();
  }

  const connectionId = credentials.connectionId?.trim();
  if (!connectionId) throw invalidArgument(CONNECTION_REQUIRED_MESSAGE);
  if (!isConnectionId(connectionId)) throw invalidArgument(CONNECTION_INVALID_MESSAGE);
  const connection = await store.findConnection(connectionId);
  if (!connection?.active || connection.accountId !== key.accountId) {
    throw invalidArgument(CONNECTION_INVALID_MESSAGE);
  }
  return { accountId: key.accountId, connectionId };
}
