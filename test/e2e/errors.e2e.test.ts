import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { generateItems } from "../../src/simulator/access-api";
import { forEachDatabase } from "../support/databases";
import { createTenant, GrpcSyncClient, restSync, type Stack, startStack } from "../support/stack";

/** Every error of SPEC §2 a client can meet, over REST and gRPC, with the same message on both. */

const CONNECTION_REQUIRED = "x-connection-id header is required";
const CONNECTION_INVALID = "x-connection-id must name an active connection of this API key's account";
const LIST_INVALID = "listId must be 1-20 decimal digits, e.g. 28489180";

forEachDatabase((db) => {
  let stack: Stack;
  let grpc: GrpcSyncClient;
  let good: string;
  let revoked: string;
  let accessOnly: string;
  let foreignKey: string;

  before(async () => {
    stack = await startStack(db, { env: { VAULTPLUS_MAX_LIST_ITEMS: "50" } });
    grpc = new GrpcSyncClient(stack.grpcTarget);
    good = (await createTenant(db, "acct_err", "conn_err")).apiKey;
    await db.admin.createConnection("acct_err", "conn_off");
    await db.admin.disableConnection("conn_off");
    foreignKey = (await createTenant(db, "acct_other", "conn_other")).apiKey;
    const r = await db.admin.createApiKey("acct_err", ["ACCOUNT"]);
    await db.admin.revokeApiKey(r.id);
    revoked = r.token;
    accessOnly = (await db.admin.createApiKey("acct_err", ["ACCESS"])).token;
    stack.simulator.setList("conn_err", "10", generateItems(5, { startId: 7_000_000_000 }));
    stack.simulator.setList("conn_err", "51", generateItems(51, { startId: 7_100_000_000 }));
  });
  after(async () => {
    grpc.close();
    await stack.close();
  });

  const cases: Array<{
    name: string;
    listId?: string;
    apiKey?: () => string | undefined;
    connection?: string | undefined;
    http: number;
    grpc: GrpcStatus;
    error: string | RegExp;
  }> = [
    {
      name: "no credentials at all",
      apiKey: () => undefined,
      connection: undefined,
      http: 401,
      grpc: GrpcStatus.UNAUTHENTICATED,
      error: "Unauthorized",
    },
    {
      name: "malformed API key",
      apiKey: () => "not-a-key",
      http: 401,
      grpc: GrpcStatus.UNAUTHENTICATED,
      error: "Unauthorized",
    },
    {
      name: "unknown API key",
      apiKey: () => `vp_0123456789abcdef_${"A".repeat(43)}`,
      http: 401,
      grpc: GrpcStatus.UNAUTHENTICATED,
      error: "Unauthorized",
    },
    {
      name: "right key id, wrong secret",
      apiKey: () => `${good.slice(0, 20)}${"B".repeat(43)}`,
      http: 401,
      grpc: GrpcStatus.UNAUTHENTICATED,
      error: "Unauthorized",
    },
    {
      name: "revoked API key",
      apiKey: () => revoked,
      http: 401,
      grpc: GrpcStatus.UNAUTHENTICATED,
      error: "Unauthorized",
    },
    {
      name: "key without the ACCOUNT scope",
      apiKey: () => accessOnly,
      http: 401,
      grpc: GrpcStatus.UNAUTHENTICATED,
      error: "Unauthorized",
    },
    {
      name: "bad key and bad connection: authentication first",
      apiKey: () => "nope",
      connection: "bad id!",
      http: 401,
      grpc: GrpcStatus.UNAUTHENTICATED,
      error: "Unauthorized",
    },
    {
      name: "missing x-connection-id",
      connection: undefined,
      http: 400,
      grpc: GrpcStatus.INVALID_ARGUMENT,
      error: CONNECTION_REQUIRED,
    },
    {
      name: "malformed x-connection-id",
      connection: "conn err",
      http: 400,
      grpc: GrpcStatus.INVALID_ARGUMENT,
      error: CONNECTION_INVALID,
    },
    {
      name: "unknown connection",
      connection: "conn_nope",
      http: 400,
      grpc: GrpcStatus.INVALID_ARGUMENT,
      error: CONNECTION_INVALID,
    },
    {
      name: "another account's connection",
      connection: "conn_other",
      http: 400,
      grpc: GrpcStatus.INVALID_ARGUMENT,
      error: CONNECTION_INVALID,
    },
    {
      name: "another account's key naming this connection",
      apiKey: () => foreignKey,
      http: 400,
      grpc: GrpcStatus.INVALID_ARGUMENT,
      error: CONNECTION_INVALID,
    },
    {
      name: "disabled connection",
      connection: "conn_off",
      http: 400,
      grpc: GrpcStatus.INVALID_ARGUMENT,
      error: CONNECTION_INVALID,
    },
    { name: "non-numeric list id", listId: "12a", http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, error: LIST_INVALID },
    {
      name: "list id of 21 digits",
      listId: "1".repeat(21),
      http: 400,
      grpc: GrpcStatus.INVALID_ARGUMENT,
      error: LIST_INVALID,
    },
    {
      name: "list unknown upstream",
      listId: "404",
      http: 502,
      grpc: GrpcStatus.UNAVAILABLE,
      error: /^Failed to fetch vault list media: the Access API answered HTTP 404/,
    },
    {
      name: "list over the fetch window",
      listId: "51",
      http: 502,
      grpc: GrpcStatus.RESOURCE_EXHAUSTED,
      error: "list exceeded the maximum fetch window of 50 items",
    },
  ];

  for (const c of cases) {
    const listId = c.listId ?? "10";
    const creds = () => {
      const key = c.apiKey ? c.apiKey() : good;
      const conn = "connection" in c ? c.connection : "conn_err";
      return { key, conn };
    };
    const matches = (message: string) =>
      typeof c.error === "string" ? expect(message).to.equal(c.error) : expect(message).to.match(c.error);

    it(`${c.name} → HTTP ${c.http}`, async () => {
      const { key, conn } = creds();
      const headers: Record<string, string> = {};
      if (key !== undefined) headers.apiKey = key;
      if (conn !== undefined) headers["x-connection-id"] = conn;
      const before = stack.simulator.requests.length;
      const res = await restSync(stack.httpUrl, listId, headers);
      expect(res.status).to.equal(c.http);
      expect(Object.keys(res.body)).to.deep.equal(["error"]);
      matches(String(res.body.error));
      if (c.http === 400 || c.http === 401) expect(stack.simulator.requests.length).to.equal(before);
    });

    it(`${c.name} → gRPC ${GrpcStatus[c.grpc]}`, async () => {
      const { key, conn } = creds();
      const md: Record<string, string> = {};
      if (key !== undefined) md.apikey = key;
      if (conn !== undefined) md["x-connection-id"] = conn;
      const err = (await grpc.sync(listId, md).then(
        () => expect.fail("expected an error"),
        (e: ServiceError) => e,
      )) as ServiceError;
      expect(err.code).to.equal(c.grpc);
      matches(err.details);
    });
  }

  it("a failed sync changes nothing and records the failure", async () => {
    const before = await db.admin.snapshot("conn_err");
    await restSync(stack.httpUrl, "51", { apiKey: good, "x-connection-id": "conn_err" });
    const after = await db.admin.snapshot("conn_err");
    const { runs: runsBefore, ...stateBefore } = before;
    const { runs: runsAfter, ...stateAfter } = after;
    expect(stateAfter).to.deep.equal(stateBefore);
    expect(runsAfter.length).to.equal(runsBefore.length + 1);
    expect(runsAfter.at(-1)).to.deep.include({ listId: "51", outcome: "failed" });
  });

  it("the API key header name is case-insensitive", async () => {
    for (const name of ["apikey", "APIKEY", "ApiKey"]) {
      const res = await restSync(stack.httpUrl, "10", { [name]: good, "X-Connection-Id": "conn_err" });
      expect(res.status, name).to.equal(200);
    }
  });
});
