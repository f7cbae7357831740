import { expect } from "chai";
import type { AccessApiMedia } from "../../src/simulator/access-api";
import { forEachDatabase } from "../support/databases";
import { createTenant, restSync, type Stack, startStack } from "../support/stack";

/**
 * SPEC §6 metrics as a Prometheus scraper sees them at GET /metrics. The meter is
 * process-wide (every service started in this test process adds to it), so each test
 * compares a scrape before with a scrape after.
 */

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key as string] = value as string;
    }
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return samples;
}

/** Sum of the samples of that name whose labels include `labels` (0 when none). */
function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

forEachDatabase((db) => {
  let stack: Stack;
  let creds: Record<string, string>;

  before(async () => {
    stack = await startStack(db);
    const tenant = await createTenant(db, "acct_metrics", "conn_metrics");
    creds = { apiKey: tenant.apiKey, "x-connection-id": tenant.connectionId };
  });
  after(() => stack?.close());

  async function scrape(): Promise<{ text: string; samples: Sample[] }> {
    const res = await fetch(`${stack.httpUrl}/metrics`);
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.match(/^text\/plain/);
    const text = await res.text();
    return { text, samples: parseExposition(text) };
  }

  it("counts syncs, items, pages, retries and in-flight syncs, labelled only by outcome or reason", async () => {
    const sim = stack.simulator;
    const listA = "880000000001"; // 45 items, then 5 leave, 3 change, 2 arrive
    const listB = "880000000002"; // 3 items of list A: adopted
    const listD = "880000000004"; // 45 items, a 503 on its second page
    const listE = "880000000005"; // 1 item, answered slowly
    const missing = "880000000003"; // not on the simulator: 404
    const a = sim.generateItems(45, { startId: 6_000_000_000 });
    sim.setList("conn_metrics", listA, a);
    sim.setList("conn_metrics", listB, a.slice(10, 13));
    sim.setList("conn_metrics", listD, sim.generateItems(45, { startId: 6_100_000_000 }));
    sim.setList("conn_metrics", listE, sim.generateItems(1, { startId: 6_200_000_000 }));
    const before = (await scrape()).samples;

    expect((await restSync(stack.httpUrl, listA, creds)).body).to.include({ addedItems: 45 });
    const changed = a
      .slice(5)
      .map(
        (item, i): AccessApiMedia =>
          i < 3
            ? { ...item, files: { full: { url: "https://cdn.example/x?Signature=s", width: 1, height: 1 } } }
            : item,
      );
    sim.setList("conn_metrics", listA, [...changed, ...sim.generateItems(2, { startId: 6_300_000_000 })]);
    expect((await restSync(stack.httpUrl, listA, creds)).body).to.include({
      seen: 42,
      addedItems: 2,
      updatedItems: 3,
      removedItems: 5,
      unchangedItems: 37,
      adoptedItems: 0,
    });
    expect((await restSync(stack.httpUrl, listB, creds)).body).to.include({ seen: 3, adoptedItems: 3 });
    expect((await restSync(stack.httpUrl, missing, creds)).status).to.equal(502);
    sim.injectFault({ kind: "status", status: 503, listId: listD, offset: 40 });
    expect((await restSync(stack.httpUrl, listD, creds)).body).to.include({ addedItems: 45 });
    expect((await restSync(stack.httpUrl, listA, { ...creds, apiKey: "vp_wrong" })).status).to.equal(401);

    // A sync in flight shows on the gauge while it runs.
    sim.injectFault({ kind: "delay", ms: 400, listId: listE });
    const slow = restSync(stack.httpUrl, listE, creds);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const during = (await scrape()).samples;
    expect(sampleValue(during, "vaultplus_sync_in_flight") - sampleValue(before, "vaultplus_sync_in_flight")).to.equal(
      1,
    );
    expect((await slow).body).to.include({ addedItems: 1 });

    const { text, samples: after } = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) =>
      sampleValue(after, name, labels) - sampleValue(before, name, labels);

    expect(delta("vaultplus_sync_in_flight")).to.equal(0);
    // Duration histogram by outcome: ok = A, A again, B, D, E.
    expect(delta("vaultplus_sync_duration_count", { outcome: "ok" })).to.equal(5);
    expect(delta("vaultplus_sync_duration_bucket", { outcome: "ok", le: "+Inf" })).to.equal(5);
    expect(delta("vaultplus_sync_duration_sum", { outcome: "ok" })).to.be.above(0.4); // E alone waited 0.4 s
    expect(delta("vaultplus_sync_duration_count", { outcome: "upstream_failed" })).to.equal(1);
    expect(delta("vaultplus_sync_duration_count", { outcome: "unauthenticated" })).to.equal(1);
    // Items of successful syncs by outcome.
    expect(delta("vaultplus_sync_items_total", { outcome: "added" })).to.equal(45 + 2 + 45 + 1);
    expect(delta("vaultplus_sync_items_total", { outcome: "updated" })).to.equal(3);
    expect(delta("vaultplus_sync_items_total", { outcome: "removed" })).to.equal(5);
    expect(delta("vaultplus_sync_items_total", { outcome: "unchanged" })).to.equal(37);
    expect(delta("vaultplus_sync_items_total", { outcome: "adopted" })).to.equal(3);
    // Pages received: A 2, A 2, B 1, missing 0, D 2 (the 503 is not a page), E 1.
    expect(delta("vaultplus_upstream_pages_total")).to.equal(8);
    expect(delta("vaultplus_upstream_retries_total", { reason: "http_5xx" })).to.equal(1);
    expect(delta("vaultplus_upstream_retries_total")).to.equal(1);

    // The names, types and units a scraper sees.
    for (const header of [
      "# TYPE vaultplus_sync_duration histogram",
      "# UNIT vaultplus_sync_duration s",
      "# TYPE vaultplus_sync_items_total counter",
      "# TYPE vaultplus_sync_in_flight gauge",
      "# TYPE vaultplus_upstream_pages_total counter",
      "# TYPE vaultplus_upstream_retries_total counter",
    ]) {
      expect(text).to.include(`\n${header}\n`);
    }

    // Low cardinality: our metrics carry only these labels, and no label anywhere names a list,
    // a connection or a key (the ids are long enough not to turn up in a pid, a port or a host id).
    const ours = after.filter((s) => s.name.startsWith("vaultplus_"));
    const labelNames = new Set(ours.flatMap((s) => Object.keys(s.labels)));
    expect([...labelNames].sort()).to.deep.equal(["le", "otel_scope_name", "outcome", "reason"]);
    const forbidden = [listA, listB, missing, listD, listE, "conn_metrics", creds.apiKey as string];
    for (const sample of after) {
      for (const value of Object.values(sample.labels)) {
        for (const id of forbidden) expect(value, `${sample.name} label`).not.to.include(id);
      }
    }
    // The REST route is a template in the HTTP server metrics, never the concrete path.
    expect(
      sampleValue(after, "http_server_request_duration_count", {
        http_route: "/v2/vault-plus/lists/{listId}/sync",
        http_response_status_code: "200",
      }),
    ).to.be.at.least(5);
  });
});
