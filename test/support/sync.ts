import { type MediaItem, toMediaItem, toMetadata, type UpstreamMedia } from "../../src/domain/media";
import { planSync, removalCandidates, type SyncCounters, type SyncPlan } from "../../src/domain/planner";
import type { SyncStore } from "../../src/store/types";

/** An upstream item; a different `variant` changes its content (and so its fingerprint). */
export function upstreamMedia(id: number, variant = 0): UpstreamMedia {
  return {
    id,
    type: "photo",
    convertedToVideo: false,
    canView: true,
    hasError: false,
    isReady: true,
    createdAt: "2024-01-01T00:00:00+00:00",
    files: {
      full: { url: `https://cdn.example/${id}?sig=${Math.random()}`, width: 1000 + variant, height: 800, size: 12345 },
    },
  };
}

/** A current-list item with a chosen fingerprint, for planner tests that reason in fingerprints. */
export function plannedItem(id: number, fingerprint: string): MediaItem {
  return { id, fingerprint, metadata: toMetadata(upstreamMedia(id)) };
}

export function mediaItems(ids: readonly number[], variants: Readonly<Record<number, number>> = {}): MediaItem[] {
  return ids.map((id) => toMediaItem(upstreamMedia(id, variants[id] ?? 0)));
}

/**
 * What SyncService does under the lock, without the upstream: load, plan, apply. `inspect`
 * sees the plan before it is applied (return false to skip apply).
 */
export async function syncWithStore(
  store: SyncStore,
  connectionId: string,
  listId: string,
  current: readonly MediaItem[],
  at: Date,
  options: { traceId?: string | null; inspect?: (plan: SyncPlan) => boolean | undefined } = {},
): Promise<SyncCounters> {
  return store.withConnectionLock(connectionId, async (unit) => {
    const ids = [...new Set(current.map((m) => m.id))];
    const previous = await unit.loadBaseline(listId);
    const cache = await unit.loadCacheView(ids);
    const ownedElsewhere = await unit.loadOwnedElsewhere(listId, removalCandidates(previous, new Set(ids)));
    const plan = planSync({ previous, cache, ownedElsewhere, current });
    if (options.inspect?.(plan) === false) return plan.counters;
    await unit.apply(listId, plan, {
      listId,
      startedAt: new Date(at.getTime() - 5),
      finishedAt: at,
      traceId: options.traceId ?? null,
      counters: plan.counters,
    });
    return plan.counters;
  });
}

export function counters(partial: Partial<SyncCounters>): SyncCounters {
  return { seen: 0, addedItems: 0, updatedItems: 0, removedItems: 0, unchangedItems: 0, adoptedItems: 0, ...partial };
}
