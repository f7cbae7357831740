/** Shows "fetched N items" on a terminal while a long list is fetched; silent when not a TTY. */
export function progressReporter(stream: NodeJS.WriteStream): { update: (received: number) => void; done: () => void } {
  let shown = false;
  return {
    update(received) {
      if (!stream.isTTY) return;
      shown = true;
      stream.write(`\rfetching list: ${received} items received…`);
    },
    done() {
      if (shown) stream.write("\r\x1b[K");
      shown = false;
    },
  };
}
