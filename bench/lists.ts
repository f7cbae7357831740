import { type AccessApiMedia, generateItems } from "../src/simulator/access-api";

/**
 * The benchmark's upstream lists, deterministic so every process builds the same ones.
 *
 * Version "A" of a list of N items is `generateItems(N)`. Version "B" is A with the first
 * 10% removed, 10% new items appended and the next 10% changed (a different full-size
 * file, so a different fingerprint): syncing A→B and B→A are both "10% added, 10%
 * removed, 10% changed", so repeated churn runs can alternate between the two.
 */

export type ListVersion = "A" | "B";

/** List ids: the item count itself (the warm-up list is "100"). */
export const listIdFor = (n: number): string => String(n);
export const WARM_LIST_ID = "100";
export const WARM_LIST_SIZE = 100;

const START_ID = 3_000_000_000;
const WARM_START_ID = 2_000_000_000;

export function listItems(n: number, version: ListVersion): AccessApiMedia[] {
  const a = generateItems(n, { startId: START_ID });
  if (version === "A") return a;
  const tenth = Math.floor(n / 10);
  const kept = a.slice(tenth).map((item, i) => (i < tenth ? changed(item) : item));
  return [...kept, ...generateItems(tenth, { startId: START_ID + n })];
}

export function warmItems(): AccessApiMedia[] {
  return generateItems(WARM_LIST_SIZE, { startId: WARM_START_ID });
}

function changed(item: AccessApiMedia): AccessApiMedia {
  const full = item.files?.full;
  return { ...item, files: { ...item.files, full: { ...full, url: full?.url ?? "", size: (full?.size ?? 0) + 1 } } };
}
