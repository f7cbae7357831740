import { expect } from "chai";
import { SyncError } from "../../src/domain/errors";
import { type AccessApiSimulator, generateItems, startAccessApiSimulator } from "../../src/simulator/access-api";
import { HttpAccessApi } from "../../src/upstream/http-client";

const API_KEY = "sim-key-fetch-pages";
const CONNECTION = "conn_pages";
const LIST = "4242";

/** fetchPages: the streaming form of fetchList that the sync uses (it keeps no page itself). */
describe("HttpAccessApi.fetchPages", () => {
  let sim: AccessApiSimulator;
  const client = (maxListItems = 10_000) =>
    new HttpAccessApi({ baseUrl: sim.url, apiKey: API_KEY, timeoutMs: 1000, deadlineMs: 3000, maxListItems });

  before(async () => {
    sim = await startAccessApiSimulator({ apiKey: API_KEY });
  });
  after(() => sim.close());

  it("hands over each page in list order and resolves with the item count", async () => {
    const items = generateItems(95, { startId: 7000 });
    sim.setList(CONNECTION, LIST, items);
    const pages: number[][] = [];
    const count = await client().fetchPages(CONNECTION, LIST, (page) => pages.push(page.map((m) => m.id)));
    expect(count).to.equal(95);
    expect(pages.map((p) => p.length)).to.deep.equal([40, 40, 15]);
    expect(pages.flat()).to.deep.equal(items.map((m) => m.id));
    // fetchList is the same fetch, collected.
    expect((await client().fetchList(CONNECTION, LIST)).map((m) => m.id)).to.deep.equal(pages.flat());
  });

  it("fails like fetchList when the list outgrows the window, after handing over the pages before it", async () => {
    sim.setList(CONNECTION, LIST, generateItems(95, { startId: 7000 }));
    const pages: number[] = [];
    const err = await client(60)
      .fetchPages(CONNECTION, LIST, (page) => pages.push(page.length))
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(SyncError);
    expect((err as SyncError).kind).to.equal("window_exceeded");
    expect(pages).to.deep.equal([40]); // the caller must discard them: they are not a list
  });
});
