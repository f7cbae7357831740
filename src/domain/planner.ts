import { METADATA_VERSION, type MediaItem } from "./media";

/**
 * Reconciliation as a pure step (SPEC §3): previous baseline + cache view + current
 * list in, plan and counters out. No I/O, no clock: the store applies the plan.
 */

export type EntryState = "pending" | "stored" | "failed";

/** Vault+'s cache entry of one media item, as far as planning needs it. */
export interface CacheEntryView {
  fingerprint: string;
  metadataVersion: number;
  state: EntryState;
}

/** One member of a list's stored baseline. */
export interface BaselineMember {
  fingerprint: string;
  firstAddedAt: Date;
}

export interface SyncCounters {
  seen: number;
  addedItems: number;
  updatedItems: number;
  removedItems: number;
  unchangedItems: number;
  adoptedItems: number;
}

export interface PlanInput {
  /** B(L) of the last successful sync, or null when the list was never synced. */
  previous: ReadonlyMap<number, BaselineMember> | null;
  /** Cache entries of the connection for (at least) the current ids. */
  cache: ReadonlyMap<number, CacheEntryView>;
  /** Removal candidates that another cached list of the connection owns. */
  ownedElsewhere: ReadonlySet<number>;
  /** The live list in upstream order; may hold duplicates. */
  current: readonly MediaItem[];
}

export interface BaselineWrite {
  mediaId: number;
  fingerprint: string;
  /** Null: a new member, the store stamps it with the sync time. */
  firstAddedAt: Date | null;
}

export interface SyncPlan {
  /** No entry yet: create `pending` and queue caching (addedItems). */
  create: MediaItem[];
  /** Changed or stale entry: purge stored content, reset to `pending` with new metadata, queue caching (updatedItems). */
  refresh: MediaItem[];
  /** Baseline rows to insert or rewrite: members new to B(L) or whose fingerprint changed. */
  baselineWrites: BaselineWrite[];
  /** Previous members missing from the current list: all leave B(L). */
  leave: number[];
  /** The subset of `leave` no other cached list owns: entry deleted, content queued for deletion (removedItems). */
  purge: number[];
  /** True when the list had no baseline: this sync creates it. */
  firstSync: boolean;
  counters: SyncCounters;
}

export function isStale(entry: CacheEntryView): boolean {
  return entry.metadataVersion < METADATA_VERSION || entry.state === "failed";
}

/** The current list without repeats; the first occurrence of an id wins. */
export function dedupe(current: readonly MediaItem[]): MediaItem[] {
  const seen = new Set<number>();
  const out: MediaItem[] = [];
  for (const item of current) {
    if (seen.has(item.id)) continue;
    seen.add(item.id);
    out.push(item);
  }
  return out;
}

/** Previous members that are not in the current list: the ids whose ownership the store must look up. */
export function removalCandidates(
  previous: ReadonlyMap<number, BaselineMember> | null,
  currentIds: ReadonlySet<number>,
): number[] {
  if (!previous) return [];
  const out: number[] = [];
  for (const id of previous.keys()) if (!currentIds.has(id)) out.push(id);
  return out;
}

export function planSync(input: PlanInput): SyncPlan {
  const { previous, cache, ownedElsewhere } = input;
  const current = dedupe(input.current);
  const plan: SyncPlan = {
    create: [],
    refresh: [],
    baselineWrites: [],
    leave: [],
    purge: [],
    firstSync: previous === null,
    counters: {
      seen: current.length,
      addedItems: 0,
      updatedItems: 0,
      removedItems: 0,
      unchangedItems: 0,
      adoptedItems: 0,
    },
  };
  const { counters } = plan;

  for (const item of current) {
    const entry = cache.get(item.id);
    const member = previous?.get(item.id);
    if (!entry) {
      plan.create.push(item);
      counters.addedItems++;
    } else if (entry.fingerprint !== item.fingerprint || isStale(entry)) {
      plan.refresh.push(item);
      counters.updatedItems++;
    } else if (member) {
      counters.unchangedItems++;
    } else {
      counters.adoptedItems++;
    }
    if (!member || member.fingerprint !== item.fingerprint) {
      plan.baselineWrites.push({
        mediaId: item.id,
        fingerprint: item.fingerprint,
        firstAddedAt: member?.firstAddedAt ?? null,
      });
    }
  }

  const currentIds = new Set(current.map((item) => item.id));
  for (const id of removalCandidates(previous, currentIds)) {
    plan.leave.push(id);
    if (!ownedElsewhere.has(id)) {
      plan.purge.push(id);
      counters.removedItems++;
    }
  }
  return plan;
}
