import { hash } from "node:crypto";

/** One file variant of an upstream media item; the URL is signed and never stored or logged. */
export interface UpstreamFile {
  url?: string;
  width?: number;
  height?: number;
  size?: number;
}

export const FILE_VARIANTS = ["full", "thumb", "preview", "squarePreview"] as const;
export type FileVariant = (typeof FILE_VARIANTS)[number];

/** A validated item of the upstream list (SPEC §4); unknown fields already dropped. */
export interface UpstreamMedia {
  id: number;
  type: "photo" | "video" | "gif" | "audio";
  convertedToVideo: boolean;
  canView: boolean;
  hasError: boolean;
  isReady: boolean;
  createdAt: string;
  duration?: number;
  hasCustomPreview?: boolean;
  files?: Partial<Record<FileVariant, UpstreamFile>>;
}

/**
 * Bumped whenever the shape of stored metadata changes: entries written by an older
 * version are stale and get refreshed (counted as updatedItems) on their next sync.
 */
export const METADATA_VERSION = 1;

/** What Vault+ stores about a media item: content-defining fields, no URLs, no counters. */
export interface MediaMetadata {
  type: UpstreamMedia["type"];
  convertedToVideo: boolean;
  isReady: boolean;
  hasError: boolean;
  canView: boolean;
  createdAt: string;
  duration: number | null;
  hasCustomPreview: boolean;
  files: Partial<Record<FileVariant, { width: number | null; height: number | null; size: number | null }>>;
}

/** A current-list item ready for planning: id, fingerprint and the metadata to store. */
export interface MediaItem {
  id: number;
  fingerprint: string;
  metadata: MediaMetadata;
}

export function toMetadata(item: UpstreamMedia): MediaMetadata {
  const files: MediaMetadata["files"] = {};
  for (const variant of FILE_VARIANTS) {
    const f = item.files?.[variant];
    if (f) files[variant] = { width: f.width ?? null, height: f.height ?? null, size: f.size ?? null };
  }
  return {
    type: item.type,
    convertedToVideo: item.convertedToVideo,
    isReady: item.isReady,
    hasError: item.hasError,
    canView: item.canView,
    createdAt: item.createdAt,
    duration: item.duration ?? null,
    hasCustomPreview: item.hasCustomPreview ?? false,
    files,
  };
}

/**
 * Stable digest of the content-defining fields (SPEC §3): type, convertedToVideo,
 * duration, isReady, hasCustomPreview, and width/height/size of each file variant.
 * Signed URLs, counters and other volatile fields are left out, so re-fetching an
 * unchanged item gives the same fingerprint. The input is a fixed-order array, so
 * key order in the upstream JSON cannot change it.
 */
export function fingerprint(item: UpstreamMedia): string {
  const canonical = [
    item.type,
    item.convertedToVideo,
    item.duration ?? null,
    item.isReady,
    item.hasCustomPreview ?? false,
    FILE_VARIANTS.map((variant) => {
      const f = item.files?.[variant];
      return f ? [f.width ?? null, f.height ?? null, f.size ?? null] : null;
    }),
  ];
  // One-shot hash (Node >= 20.12): a third cheaper than createHash().update().digest() per item.
  return hash("sha256", JSON.stringify(canonical), "hex");
}

export function toMediaItem(item: UpstreamMedia): MediaItem {
  return { id: item.id, fingerprint: fingerprint(item), metadata: toMetadata(item) };
}
