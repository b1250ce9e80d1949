/**
 * Workers keep at most 6 connections open per invocation; a 7th fetch waits for a free one. A request's timeout
 * starts only once it holds one of these slots (src/delivery/forward.ts), so a slow receiver cannot make others
 * time out.
 */
export const MAX_CONNECTIONS = 6;

/** At most `size` holders at once; the others wait in arrival order. */
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.free++;
    };
  }
}
