import type { UpstreamMedia } from "../domain/media";

/** Progress of one list fetch: items received so far, after each page. */
export type FetchProgress = (received: number) => void;

export interface FetchListOptions {
  signal?: AbortSignal;
  onProgress?: FetchProgress;
}

/** Receives the validated items of each page, in list order. */
export type PageHandler = (items: UpstreamMedia[]) => void;

/**
 * The upstream Access API as the sync needs it. Fails with a SyncError of kind
 * `upstream_failed` or `window_exceeded`; never returns a partial list.
 */
export interface AccessApi {
  fetchList(connectionId: string, listId: string, options?: FetchListOptions): Promise<UpstreamMedia[]>;
  /**
   * The same fetch, page by page: `onPage` gets each page's items as it arrives and the client
   * keeps none of them, so a caller that transforms them never holds the whole raw list (signed
   * URLs included) at once. Resolves with the number of items once the whole list was received;
   * when it fails, the pages already handed over are not a list and must be discarded.
   */
  fetchPages(connectionId: string, listId: string, onPage: PageHandler, options?: FetchListOptions): Promise<number>;
}
