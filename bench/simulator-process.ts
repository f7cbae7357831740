import type { AccessApiMedia } from "../src/simulator/access-api";
import { startAccessApiSimulator } from "../src/simulator/access-api";
import { serveParent } from "./children";
import { type ListVersion, listItems, WARM_LIST_ID, warmItems } from "./lists";

/**
 * The Access API simulator in its own process (no artificial delay): the syncing process's
 * peak RSS and CPU are then its own. The parent sets lists by (connection, list, size, version).
 */

export const BENCH_UPSTREAM_KEY = "bench-upstream-key";

export interface SimulatorInfo {
  url: string;
  apiKey: string;
}

export interface SetListCommand {
  /** "*" answers for every connection without a list of its own. */
  connectionId: string;
  listId: string;
  n: number;
  version: ListVersion;
}

const built = new Map<string, AccessApiMedia[]>();

function versionOf(n: number, version: ListVersion): AccessApiMedia[] {
  const key = `${n}:${version}`;
  let items = built.get(key);
  if (!items) {
    items = listItems(n, version);
    built.set(key, items);
  }
  return items;
}

if (require.main === module) {
  let url = "";
  let setList: ((c: string, l: string, items: AccessApiMedia[]) => void) | undefined;
  serveParent(
    {
      setList: async (cmd: SetListCommand) => {
        setList?.(cmd.connectionId, cmd.listId, versionOf(cmd.n, cmd.version));
        return { items: cmd.n };
      },
    },
    async () => {
      const simulator = await startAccessApiSimulator({ apiKey: BENCH_UPSTREAM_KEY, port: 0 });
      simulator.setList("*", WARM_LIST_ID, warmItems());
      setList = (c, l, items) => {
        simulator.setList(c, l, items);
        simulator.clearRequests(); // it records every request: keep its memory flat
      };
      // It records every request it answers; the benchmark never reads them.
      setInterval(() => simulator.clearRequests(), 5000).unref();
      url = simulator.url;
      return { url, apiKey: BENCH_UPSTREAM_KEY } satisfies SimulatorInfo;
    },
  );
}
