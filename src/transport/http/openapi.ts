/**
 * The OpenAPI 3.1 description served at GET /openapi.json. It follows the published
 * reference (vault-plus-list-sync.openapi.yaml) field for field, except: the path in
 * OpenAPI's own template form, tighter parameter schemas (the input rules of SPEC §2.3),
 * the optional request body and an operationId, and the gateway's other answers
 * (404/405/413/415/500/503) documented. Schemas and examples of 200/400/401/502 are the reference's.
 */
import { DB_UNAVAILABLE_MESSAGE, INTERNAL_MESSAGE } from "../../domain/errors";
import { MAX_BODY_BYTES } from "./io";

export const SYNC_PATH_TEMPLATE = "/v2/vault-plus/lists/{listId}/sync";

function errorContent(example: string) {
  return {
    "application/json": {
      schema: {
        type: "object",
        properties: {
          error: { type: "string", description: "Human-readable error message.", example: "Unauthorized" },
        },
        required: ["error"],
        description: "Error response.",
      },
      example: { error: example },
    },
  };
}

function counter(description: string, example: number) {
  return { type: "number", description, example };
}

const syncResponseSchema = {
  type: "object",
  properties: {
    synced: { type: "boolean", description: "Whether the sync completed.", example: true },
    listId: { type: "string", description: "OnlyFans vault list ID.", example: "28489180" },
    seen: counter("Number of media items seen in the current OF list fetch.", 42),
    addedItems: counter("Number of current-list media items not already cached and queued for caching.", 2),
    updatedItems: counter(
      "Number of current-list media items with changed fingerprints or stale cached metadata, purged and queued again.",
      1,
    ),
    removedItems: counter(
      "Number of prior-baseline media items purged because they are missing from the current list and not owned by another cached list.",
      4,
    ),
    unchangedItems: counter(
      "Number of current-list media items already present in the previous sync baseline and still current.",
      35,
    ),
    adoptedItems: counter(
      "Number of current-list media items already cached by Vault+ but not present in this list's previous sync baseline.",
      0,
    ),
  },
  required: [
    "synced",
    "listId",
    "seen",
    "addedItems",
    "updatedItems",
    "removedItems",
    "unchangedItems",
    "adoptedItems",
  ],
  description: "Authoritative list sync response.",
};

export const OPENAPI_DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "OFAuth API",
    version: "1.0.0",
    description:
      "OFAuth API including Account, Connections, Link, Access, Dynamic Rules, Vault+, and Realtime webhook contracts",
    contact: { email: "support@ofauth.com", url: "https://ofauth.com/" },
  },
  servers: [{ url: "https://api.ofauth.com" }],
  security: [{ ApiKey: [] }],
  externalDocs: { description: "OFAuth Developer Documentation", url: "https://docs.ofauth.com" },
  paths: {
    [SYNC_PATH_TEMPLATE]: {
      put: {
        tags: ["Vault+ Lists"],
        operationId: "syncList",
        summary: "Sync cached media to a vault list",
        description:
          "Fetches the current OF list and reconciles it against the previous sync baseline. First sync removes nothing. Later syncs purge only media missing from the current list and present in the previous baseline, unless another cached list still owns that media.",
        parameters: [
          {
            schema: {
              type: "string",
              pattern: "^[0-9]{1,20}$",
              description: "OnlyFans vault list ID to use for the authoritative sync.",
              example: "28489180",
            },
            required: true,
            name: "listId",
            in: "path",
          },
          {
            schema: {
              type: "string",
              minLength: 1,
              maxLength: 64,
              pattern: "^[A-Za-z0-9_-]{1,64}$",
              description: "Connection ID whose Vault+ list cache should be read or modified.",
              example: "conn_v5bsqkzsjfk8cgr7hqbbw09t",
            },
            required: true,
            name: "x-connection-id",
            in: "header",
          },
        ],
        requestBody: {
          required: false,
          description:
            "Optional: send no body or an empty JSON object. The path's listId always wins; unknown fields are refused with 400.",
          content: { "application/json": { schema: { type: "object" }, example: {} } },
        },
        responses: {
          "200": {
            description:
              "Authoritative list sync completed. First sync establishes the baseline and removes nothing. Later syncs remove only media missing from the current list and present in the previous sync baseline.",
            content: {
              "application/json": {
                schema: syncResponseSchema,
                example: {
                  synced: true,
                  listId: "28489180",
                  seen: 42,
                  addedItems: 2,
                  updatedItems: 1,
                  removedItems: 4,
                  unchangedItems: 35,
                  adoptedItems: 0,
                },
              },
            },
          },
          "400": {
            description:
              "The x-connection-id header is missing or invalid, the listId is not 1-20 decimal digits, or the request body is not a valid JSON object.",
            content: errorContent("x-connection-id header is required"),
          },
          "401": {
            description: "The API key is missing, invalid, or lacks the ACCOUNT scope.",
            content: errorContent("Unauthorized"),
          },
          "404": {
            description: "No such route.",
            content: errorContent("no route for GET /v2/vault-plus/lists; see /openapi.json"),
          },
          "405": {
            description: "The path exists but not for this HTTP method; the Allow header lists the methods it takes.",
            content: errorContent("method GET is not allowed on /v2/vault-plus/lists/28489180/sync; allowed: PUT"),
          },
          "413": {
            description: "The request body is larger than the gateway accepts.",
            content: errorContent(`request body is larger than the limit of ${MAX_BODY_BYTES} bytes`),
          },
          "415": {
            description: "A request body was sent with a content type other than application/json.",
            content: errorContent('unsupported content type "text/plain": send application/json or no body'),
          },
          "500": {
            description: "An unexpected error; the sync changed nothing. No internals are disclosed.",
            content: errorContent(INTERNAL_MESSAGE),
          },
          "502": {
            description:
              "Vault+ could not fetch the live OnlyFans vault list for this connection, or the list exceeded the maximum fetch window.",
            content: errorContent("Failed to fetch vault list media"),
          },
          "503": {
            description: "The database is unavailable; the sync changed nothing. Retry after a few seconds.",
            content: errorContent(DB_UNAVAILABLE_MESSAGE),
          },
        },
        security: [{ ApiKey: [] }],
      },
    },
  },
  components: {
    securitySchemes: {
      ApiKey: {
        type: "apiKey",
        name: "apiKey",
        in: "header",
        description: "Your OFAuth [API key](/quickstart#2-copy-your-api-key) for authenticating requests.",
      },
    },
  },
} as const;
