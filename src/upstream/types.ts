import type { UpstreamMedia } from "../domain/media";

/** Progress of one list fetch: items received so far, after each page. */
export type FetchProgress = (received: number) => void;

export interface FetchListOptions {
  signal?: AbortSignal;
  onProgress?: FetchProgress;
}

/**
 * The upstream Access API as the sync needs it. Fails with a SyncError of kind
 * `upstream_failed` or `window_exceeded`; never returns a partial list.
 */
export interface AccessApi {
  fetchList(connectionId: string, listId: string, options?: FetchListOptions): Promise<UpstreamMedia[]>;
}
