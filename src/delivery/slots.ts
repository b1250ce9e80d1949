/**
 * Workers keep at most 6 connections open per invocation; a 7th fetch waits for a free one. A request's timeout
 * starts only once it holds one of these slots (src/delivery/forward.ts), so a slow receiver cannot make others
 * time out.
 */
export const MAX_CONNECTIONS = 6;

/**
 * What deliveries of claimed notifications may hold at once, in bytes (src/delivery/body.ts, claimedMemory), of an
 * isolate's 128 MB: a 10 MiB notification's delivery holds about 40 MiB while its claim is read, checked, put in
 * its body and signed, so such deliveries go one at a time. One over the budget goes alone.
 */
export const CLAIMED_MEMORY_BYTES = 64 * 1024 * 1024;

/** A budget of `size` units; holders take some and the others wait in arrival order. */
export class Slots {
  private free: number;
  private readonly size: number;
  private readonly waiting: { weight: number; resolve: () => void }[] = [];
  constructor(size: number) {
    this.size = size;
    this.free = size;
  }
  /** Takes `weight` units (at most the whole budget) once they are free; the function gives them back. */
  async acquire(weight = 1): Promise<() => void> {
    const taken = Math.min(weight, this.size);
    if (this.waiting.length === 0 && this.free >= taken) this.free -= taken;
    else await new Promise<void>((resolve) => this.waiting.push({ weight: taken, resolve }));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.free += taken;
      while (this.waiting.length > 0 && this.free >= this.waiting[0]!.weight) {
        const next = this.waiting.shift()!;
        this.free -= next.weight;
        next.resolve();
      }
    };
  }
}
