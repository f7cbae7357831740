import { expect } from "chai";
import { fingerprint, toMetadata, type UpstreamMedia } from "../../src/domain/media";

function photo(over: Partial<UpstreamMedia> = {}): UpstreamMedia {
  return {
    id: 7,
    type: "photo",
    convertedToVideo: false,
    canView: true,
    hasError: false,
    isReady: true,
    createdAt: "2026-01-02T03:04:05+00:00",
    hasCustomPreview: false,
    files: {
      full: { url: "https://cdn.example/full.jpg?sig=aaa", width: 1080, height: 1350, size: 200123 },
      thumb: { url: "https://cdn.example/thumb.jpg?sig=aaa", width: 300, height: 300, size: 9000 },
    },
    ...over,
  };
}

describe("fingerprint", () => {
  it("ignores signed URLs, counters and key order", () => {
    const a = photo();
    const b = photo({
      files: {
        thumb: { size: 9000, height: 300, width: 300, url: "https://cdn.example/thumb.jpg?sig=zzz" },
        full: { size: 200123, height: 1350, width: 1080, url: "https://cdn.example/full.jpg?sig=zzz" },
      },
      canView: false,
      createdAt: "2020-01-01T00:00:00Z",
    });
    expect(fingerprint(b)).to.equal(fingerprint(a));
  });

  for (const [name, change] of [
    ["type", { type: "video" }],
    ["convertedToVideo", { convertedToVideo: true }],
    ["duration", { duration: 12 }],
    ["isReady", { isReady: false }],
    ["hasCustomPreview", { hasCustomPreview: true }],
    [
      "a variant's size",
      { files: { full: { url: "u", width: 1080, height: 1350, size: 1 }, thumb: photo().files?.thumb } },
    ],
    [
      "a variant's width",
      { files: { full: { url: "u", width: 1, height: 1350, size: 200123 }, thumb: photo().files?.thumb } },
    ],
    ["a new variant", { files: { ...photo().files, preview: { url: "u", width: 10, height: 10, size: 10 } } }],
  ] as Array<[string, Partial<UpstreamMedia>]>) {
    it(`changes when ${name} changes`, () => {
      expect(fingerprint(photo(change))).to.not.equal(fingerprint(photo()));
    });
  }

  it("is a 64-character hex digest", () => {
    expect(fingerprint(photo())).to.match(/^[0-9a-f]{64}$/);
  });

  it("stores no URL in metadata", () => {
    expect(JSON.stringify(toMetadata(photo()))).to.not.include("cdn.example");
  });
});
