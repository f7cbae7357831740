import type { ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { parseApiKey } from "../../src/service/api-keys";
import type { AccessApiMedia, FaultKind } from "../../src/simulator/access-api";
import { forEachDatabase } from "../support/databases";
import { createTenant, GrpcSyncClient, restSync, type Stack, startStack, UPSTREAM_KEY } from "../support/stack";
import { spans } from "./helpers";

/**
 * SPEC §6: logs never carry API keys or signed URLs, and neither do spans or error bodies.
 * Recognizable secrets go in (the client's API key, wrong keys, Vault+'s upstream key, the
 * signed media URLs of the Access API); a mix of good and failing syncs runs over REST and
 * gRPC; then every log line, every exported span (attributes, events, status, resource),
 * every error body, the run records and /metrics are searched for them.
 */

const PLANTED_SIGNATURE = "PLANTEDsignatureTOKEN0x5eed";
const GARBAGE_KEY = "PLANTED-garbage-api-key-0c4f1e";

forEachDatabase((db) => {
  let stack: Stack;

  before(async () => {
    stack = await startStack(db);
  });
  after(() => stack?.close());

  it("no key, upstream key or signed URL reaches logs, spans, error bodies, run records or /metrics", async function () {
    this.timeout(60_000);
    const sim = stack.simulator;
    const tenant = await createTenant(db, "acct_secrets", "conn_secrets");
    const parsed = parseApiKey(tenant.apiKey);
    if (!parsed) throw new Error("the tenant's key does not parse");
    const wrongSecret = `PLANTEDwrongSecret${"x".repeat(43 - 18)}`;
    const wrongKey = `vp_${parsed.id}_${wrongSecret}`; // the right key id with a wrong secret

    // Lists whose media URLs are signed: the simulator's own and planted ones.
    const generated = sim.generateItems(45, { startId: 7_000_000_000 });
    const planted: AccessApiMedia[] = sim.generateItems(3, { startId: 7_100_000_000 }).map((item, i) => ({
      ...item,
      files: {
        full: { url: `https://cdn.example/${item.id}.jpg?Expires=1&Signature=${PLANTED_SIGNATURE}${i}`, width: 9 },
        thumb: { url: `https://cdn.example/${item.id}_t.jpg?Signature=${PLANTED_SIGNATURE}t${i}` },
      },
    }));
    const signatures = [...generated, ...planted].flatMap((item) =>
      Object.values(item.files ?? {}).map((f) => /Signature=([^&]+)/.exec(f?.url ?? "")?.[1] as string),
    );
    expect(signatures).to.have.length.above(100);
    const lists: Record<string, AccessApiMedia[]> = {
      "9001": generated,
      "9002": planted,
      "9003": generated,
      "9004": planted,
      "9005": generated,
      "9006": planted,
      "9007": generated,
    };
    for (const [listId, items] of Object.entries(lists)) sim.setList("conn_secrets", listId, items);
    const faults: Record<string, FaultKind> = {
      "9003": { kind: "status", status: 500 },
      "9004": { kind: "wrongShape" },
      "9005": { kind: "nonNumericIds" },
      "9006": { kind: "badJson" },
      "9007": { kind: "status", status: 401 },
    };
    for (const [listId, fault] of Object.entries(faults)) sim.injectFault({ ...fault, listId, times: "always" });

    const good = { apiKey: tenant.apiKey, "x-connection-id": "conn_secrets" };
    const calls: Array<{ listId: string; headers: Record<string, string>; expect: number }> = [
      { listId: "9001", headers: good, expect: 200 },
      { listId: "9002", headers: good, expect: 200 },
      { listId: "9001", headers: { ...good, apiKey: wrongKey }, expect: 401 },
      { listId: "9001", headers: { ...good, apiKey: GARBAGE_KEY }, expect: 401 },
      { listId: "9001", headers: { ...good, "x-connection-id": "conn_unknown" }, expect: 400 },
      { listId: "9003", headers: good, expect: 502 }, // 500 until the attempts run out
      { listId: "9004", headers: good, expect: 502 },
      { listId: "9005", headers: good, expect: 502 },
      { listId: "9006", headers: good, expect: 502 },
      { listId: "9007", headers: good, expect: 502 }, // the Access API refuses Vault+'s key
    ];

    const errorBodies: string[] = [];
    for (const call of calls) {
      const res = await restSync(stack.httpUrl, call.listId, call.headers);
      expect(res.status, `REST ${call.listId}`).to.equal(call.expect);
      if (res.status !== 200) errorBodies.push(JSON.stringify(res.body));
    }
    const client = new GrpcSyncClient(stack.grpcTarget);
    try {
      for (const call of calls) {
        const metadata = Object.fromEntries(Object.entries(call.headers).map(([k, v]) => [k.toLowerCase(), v]));
        const err = await client.sync(call.listId, metadata).then(
          () => null,
          (e: ServiceError) => e,
        );
        expect(err === null, `gRPC ${call.listId}`).to.equal(call.expect === 200);
        if (err)
          errorBodies.push(
            JSON.stringify({
              code: err.code,
              details: err.details,
              message: err.message,
              metadata: err.metadata?.toJSON(),
            }),
          );
      }
    } finally {
      client.close();
    }

    // The secrets were really in play: Vault+ sent its key upstream, and the pages carried the URLs.
    expect(sim.requests.some((r) => r.headers.apikey === UPSTREAM_KEY)).to.equal(true);
    expect(errorBodies).to.have.length(16);

    const exported = spans.getFinishedSpans();
    const spanText = exported.map((s) =>
      JSON.stringify({
        name: s.name,
        attributes: s.attributes,
        events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
        status: s.status,
        links: s.links,
        resource: s.resource.attributes,
      }),
    );
    const runs = JSON.stringify(await db.knex("sync_runs").select());
    const metrics = await (await fetch(`${stack.httpUrl}/metrics`)).text();
    const haystacks: Record<string, string> = {
      logs: stack.logs.join("\n"),
      spans: spanText.join("\n"),
      "error bodies": errorBodies.join("\n"),
      "sync_runs rows": runs,
      "/metrics": metrics,
    };

    // Each haystack really holds what was searched (so an empty capture cannot pass).
    expect(stack.logs.filter((l) => l.includes('"event":"sync"'))).to.have.length(20);
    expect(haystacks.logs).to.include("conn_secrets");
    expect(exported.filter((s) => s.name === "SyncList")).to.have.length(20);
    expect(haystacks.spans).to.include("Failed to fetch vault list media");
    expect(haystacks["error bodies"]).to.include("Unauthorized");
    expect(haystacks["sync_runs rows"]).to.include("Failed to fetch vault list media");

    // Header capture is off: no span records request headers or metadata.
    const attributeKeys = exported.flatMap((s) => Object.keys(s.attributes));
    expect(attributeKeys.filter((k) => /header|metadata/i.test(k))).to.deep.equal([]);

    const secrets = [tenant.apiKey, parsed.secret, wrongKey, wrongSecret, GARBAGE_KEY, UPSTREAM_KEY, ...signatures];
    for (const [where, text] of Object.entries(haystacks)) {
      for (const secret of secrets) {
        const at = text.indexOf(secret);
        expect(at, `${where} contain a secret: …${text.slice(Math.max(0, at - 80), at + 80)}…`).to.equal(-1);
      }
      expect(text, `${where} contain a signed URL`).not.to.match(/Signature=|PLANTED/);
    }
  });
});
