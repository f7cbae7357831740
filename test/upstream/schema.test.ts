import { expect } from "chai";
import { parsePage } from "../../src/upstream/schema";

function item(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 7,
    type: "video",
    convertedToVideo: false,
    canView: true,
    hasError: false,
    isReady: true,
    createdAt: "2026-01-02T03:04:05+00:00",
    duration: 12,
    hasCustomPreview: true,
    files: { full: { url: "https://cdn.example/a.mp4?sig=1", width: 1, height: 2, size: 3 }, thumb: { url: "u" } },
    counters: { likesCount: 3 },
    somethingNew: "ignored",
    ...over,
  };
}

function problem(body: unknown): string | undefined {
  const result = parsePage(body);
  return result.ok ? undefined : result.problem;
}

describe("Access API page schema", () => {
  it("accepts the documented shape and strips unknown fields and counters", () => {
    const result = parsePage({ list: [item()], hasMore: false, extra: 1 });
    expect(result).to.deep.equal({
      ok: true,
      page: {
        hasMore: false,
        list: [
          {
            id: 7,
            type: "video",
            convertedToVideo: false,
            canView: true,
            hasError: false,
            isReady: true,
            createdAt: "2026-01-02T03:04:05+00:00",
            duration: 12,
            hasCustomPreview: true,
            files: {
              full: { url: "https://cdn.example/a.mp4?sig=1", width: 1, height: 2, size: 3 },
              thumb: { url: "u" },
            },
          },
        ],
      },
    });
  });

  it("accepts an item with only the required fields", () => {
    const { duration, hasCustomPreview, files, counters, ...minimal } = item();
    expect(parsePage({ list: [minimal], hasMore: true }).ok).to.equal(true);
  });

  it("names the first bad field", () => {
    expect(problem({ list: [item(), item({ id: "7" })], hasMore: false })).to.equal("list[1].id is not a number");
    expect(problem({ list: [item({ id: 1.5 })], hasMore: false })).to.equal("list[0].id is not an integer");
    expect(problem({ list: [item({ id: -1 })], hasMore: false })).to.equal("list[0].id is negative");
    expect(problem({ list: [item({ id: 2 ** 60 })], hasMore: false })).to.equal("list[0].id is too large");
    expect(problem({ list: [item({ type: "text" })], hasMore: false })).to.equal(
      "list[0].type is not one of photo, video, gif, audio",
    );
    expect(problem({ list: [item({ isReady: undefined })], hasMore: false })).to.equal("list[0].isReady is missing");
    expect(problem({ list: [item({ files: { full: { width: 1 } } })], hasMore: false })).to.equal(
      "list[0].files.full.url is missing",
    );
    expect(problem({ list: [item({ duration: "12" })], hasMore: false })).to.equal("list[0].duration is not a number");
    expect(problem({ list: [], hasMore: "false" })).to.equal("hasMore is not a boolean");
    expect(problem({ hasMore: false })).to.equal("list is missing");
    expect(problem({ list: {}, hasMore: false })).to.equal("list is not an array");
    expect(problem([])).to.equal("the body is not an object");
    expect(problem(null)).to.equal("the body is not an object");
  });

  it("never quotes the received value", () => {
    const url = "https://cdn.example/secret.jpg?Signature=PLANTED";
    for (const over of [
      { type: url },
      { id: url },
      { createdAt: { url } },
      { files: { full: { url: 5, size: url } } },
    ]) {
      const text = problem({ list: [item(over)], hasMore: false });
      expect(text).to.be.a("string");
      expect(text).not.to.include("PLANTED");
    }
  });
});

describe("Access API page schema: nulls", () => {
  it("reads null optional fields as absent", () => {
    const result = parsePage({
      list: [
        {
          id: 1,
          type: "photo",
          convertedToVideo: false,
          canView: true,
          hasError: false,
          isReady: true,
          createdAt: "2026-01-01T00:00:00Z",
          duration: null,
          hasCustomPreview: null,
          files: { full: { url: "u", width: null, size: 3 }, thumb: null },
        },
      ],
      hasMore: false,
    });
    expect(result.ok).to.equal(true);
    const item = result.ok ? result.page.list[0] : undefined;
    expect(item?.duration).to.equal(undefined);
    expect(item?.hasCustomPreview).to.equal(undefined);
    expect(item?.files?.thumb).to.equal(undefined);
    expect(item?.files?.full).to.include({ url: "u", size: 3 });
    expect(item?.files?.full?.width).to.equal(undefined);
  });
});
