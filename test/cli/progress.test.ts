import { expect } from "chai";
import { progressReporter } from "../../src/cli/progress";

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream };
}

describe("CLI progress", () => {
  it("shows items received on a terminal and clears the line when done", () => {
    const { writes, stream } = fakeStream(true);
    const progress = progressReporter(stream);
    progress.update(40);
    progress.update(80);
    progress.done();
    progress.done();
    expect(writes).to.deep.equal([
      "\rfetching list: 40 items received…",
      "\rfetching list: 80 items received…",
      "\r\x1b[K",
    ]);
  });

  it("stays silent when stderr is not a terminal", () => {
    const { writes, stream } = fakeStream(false);
    const progress = progressReporter(stream);
    progress.update(40);
    progress.done();
    expect(writes).to.deep.equal([]);
  });
});
