import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type HeldItem, HeldRows } from "../../src/gate/held.ts";
import { inAcceptedOrder, ORDER_RETRY_MARGIN_MS, ownerOf, Shaper } from "../../src/gate/shaping.ts";

/**
 * The gate's order and coalescing decisions (docs/rules.md, "Shaping deliveries"), on the gate's own SQLite storage
 * with the time handed in. A restart is a new HeldRows and Shaper over the same storage: nothing is kept only in
 * memory, so what they decide after it is what they would have decided before.
 */

let n = 0;
/** Storage of a gate no test has used, and a way to "restart" over it. */
async function withStorage(test: (boot: () => { held: HeldRows; shaper: Shaper }) => void): Promise<void> {
  const stub = env.GATES.getByName(`shaping-${Date.now().toString(36)}-${n++}`);
  await runInDurableObject(stub, (_instance, state) => {
    const boot = () => {
      const held = new HeldRows(state.storage.sql);
      return { held, shaper: new Shaper(state.storage.sql, held) };
    };
    test(boot);
  });
}

const T = Date.parse("2026-12-07T12:00:00Z");
let seq = 0;
function item(overrides: Partial<HeldItem> & { deliveryId?: string }): HeldItem {
  return {
    deliveryId: `call${seq++}.shop`,
    run: 0,
    attempts: 0,
    text: "{}",
    receivedAt: T,
    index: 0,
    ...overrides,
  };
}

const stock = (product: string, warehouse = "YX") => JSON.stringify(["BalanceChanged", product, warehouse]);

describe("order per business key", () => {
  it("lets the first delivery of a key go and holds the next one behind it; another key flows", () => {
    return withStorage((boot) => {
      const { held, shaper } = boot();
      const first = item({ keys: ["K1"] });
      expect(shaper.arrive(first, T)).toEqual({ free: true });
      shaper.claim(first, T + 40_000);
      const second = item({ keys: ["K1"], receivedAt: T + 1 });
      expect(shaper.arrive(second, T + 10)).toEqual({ held: "ordered", waitsFor: first.deliveryId });
      held.hold(second, "ordered", T + 10, { waits: first.deliveryId });
      expect(shaper.arrive(item({ keys: ["K2"] }), T + 20)).toEqual({ free: true });
      // A third of K1 lines up behind the second, not only behind the owner.
      const third = item({ keys: ["K1"], receivedAt: T + 2 });
      expect(shaper.arrive(third, T + 30)).toEqual({ held: "ordered", waitsFor: first.deliveryId });
    });
  });

  it("keeps a retrying owner's keys: later ones wait, and the owner itself never waits for them", () => {
    return withStorage((boot) => {
      const { held, shaper } = boot();
      const first = item({ keys: ["K1"] });
      shaper.arrive(first, T);
      shaper.claim(first, T + 40_000);
      expect(shaper.settled(ownerOf(first), false, T + 10_000, T + 1000)).toEqual([]);
      const second = item({ keys: ["K1"], receivedAt: T + 1 });
      held.hold(second, "ordered", T + 2000, { waits: first.deliveryId });
      // The retry comes back (attempts 1): it goes, though the second is in line for its key.
      expect(shaper.arrive({ ...first, attempts: 1 }, T + 11_000)).toEqual({ free: true });
    });
  });

  it("wakes the next in line when the owner is delivered, and that one then goes before any newcomer", () => {
    return withStorage((boot) => {
      const { held, shaper } = boot();
      const first = item({ keys: ["K1"] });
      shaper.claim(first, T + 40_000);
      const second = item({ keys: ["K1"], receivedAt: T + 1 });
      held.hold(second, "ordered", T + 10, { waits: first.deliveryId });
      const [woken] = shaper.settled(ownerOf(first), true, undefined, T + 500);
      expect(woken).toBeDefined();
      const row = held.next(new Set(), T + 600)!;
      expect(row.delivery_id).toBe(second.deliveryId);
      // The pump takes it: nothing before it in line, no owner.
      expect(shaper.blocker(second, T + 600, row.seq)).toBeUndefined();
      // A newcomer of K1 waits behind it.
      expect(shaper.arrive(item({ keys: ["K1"], receivedAt: T + 5 }), T + 600)).toEqual({
        held: "ordered",
        waitsFor: second.deliveryId,
      });
    });
  });

  it("wakes the next in line when the owner becomes a dead letter", () => {
    return withStorage((boot) => {
      const { held, shaper } = boot();
      const first = item({ keys: ["K1", "K9"] });
      shaper.claim(first, T + 40_000);
      const second = item({ keys: ["K9"], receivedAt: T + 1 });
      held.hold(second, "ordered", T + 10, { waits: first.deliveryId });
      expect(held.next(new Set(), T + 20)).toBeUndefined();
      shaper.settled(ownerOf(first), false, T + 60_000, T + 100);
      expect(held.next(new Set(), T + 200)).toBeUndefined();
      // Its last attempt fails for good: a dead letter frees both keys.
      expect(shaper.settled(ownerOf(first), true, undefined, T + 61_000)).toHaveLength(1);
      expect(held.next(new Set(), T + 61_001)?.delivery_id).toBe(second.deliveryId);
    });
  });

  it("frees the keys of an owner that never comes back, a margin after its retry was due", () => {
    return withStorage((boot) => {
      const { held, shaper } = boot();
      const first = item({ keys: ["K1"] });
      shaper.claim(first, T + 40_000);
      shaper.settled(ownerOf(first), false, T + 10_000, T + 1000);
      const second = item({ keys: ["K1"], receivedAt: T + 1 });
      held.hold(second, "ordered", T + 2000, { waits: first.deliveryId });
      expect(shaper.nextExpiry()).toBe(T + 10_000 + ORDER_RETRY_MARGIN_MS);
      expect(shaper.expire(T + 10_000 + ORDER_RETRY_MARGIN_MS - 1)).toEqual([]);
      expect(shaper.expire(T + 10_000 + ORDER_RETRY_MARGIN_MS)).toHaveLength(1);
      expect(held.next(new Set(), T + 10_000 + ORDER_RETRY_MARGIN_MS)?.delivery_id).toBe(second.deliveryId);
    });
  });

  it("decides the same after a restart while a key is taken", () => {
    return withStorage((boot) => {
      const before = boot();
      const first = item({ keys: ["K1"] });
      before.shaper.claim(first, T + 40_000);
      const second = item({ keys: ["K1"], receivedAt: T + 1 });
      before.held.hold(second, "ordered", T + 10, { waits: first.deliveryId });
      const after = boot();
      expect(after.held.count).toBe(1);
      expect(after.held.inLine).toBe(0);
      expect(after.shaper.arrive(item({ keys: ["K1"] }), T + 20)).toEqual({
        held: "ordered",
        waitsFor: first.deliveryId,
      });
      expect(after.shaper.settled(ownerOf(first), true, undefined, T + 30)).toHaveLength(1);
      expect(after.held.inLine).toBe(1);
    });
  });

  it("decides a batch in the order the relay accepted its deliveries, not the order they came in", () => {
    const batch = [
      { receivedAt: T + 5, index: 0 },
      { receivedAt: T, index: 2 },
      { receivedAt: T, index: 1 },
    ];
    expect(inAcceptedOrder(batch)).toEqual([2, 1, 0]);
  });
});

describe("coalescing", () => {
  it("holds the first for its window, replaces it with each newer one, and sends the latest when the first's window ends", () => {
    return withStorage((boot) => {
      const { held, shaper } = boot();
      const coalesce = { key: stock("P1"), window: 10 };
      const first = item({ coalesce, text: "first" });
      expect(shaper.arrive(first, T)).toEqual({ held: "coalescing", due: T + 10_000 });
      const second = item({ coalesce, receivedAt: T + 3000, text: "second" });
      expect(shaper.arrive(second, T + 3000)).toEqual({ held: "coalescing", due: T + 10_000 });
      const third = item({ coalesce, receivedAt: T + 6000, text: "third" });
      expect(shaper.arrive(third, T + 6000)).toEqual({ held: "coalescing", due: T + 10_000 });
      expect(held.count).toBe(1);
      expect(held.next(new Set(), T + 9999)).toBeUndefined();
      expect(held.nextDue(T + 6000)).toBe(T + 10_000);
      expect(held.next(new Set(), T + 10_000)?.delivery_id).toBe(third.deliveryId);
      // When it goes, both it replaced are superseded by it (by the one sent, not by one replaced in turn).
      expect(shaper.carried(coalesce.key)).toEqual(["first", "second"]);
      expect(shaper.carried(coalesce.key)).toEqual([]);
    });
  });

  it("never merges different keys, warehouses or Actions", () => {
    return withStorage((boot) => {
      const { held, shaper } = boot();
      for (const key of [
        stock("P1"),
        stock("P2"),
        stock("P1", "ZZ"),
        JSON.stringify(["AvailableBalanceChanged", "P1", "YX"]),
      ]) {
        expect(shaper.arrive(item({ coalesce: { key, window: 10 } }), T)).toEqual({
          held: "coalescing",
          due: T + 10_000,
        });
      }
      expect(held.count).toBe(4);
    });
  });

  it("opens a new window once the last one has closed", () => {
    return withStorage((boot) => {
      const { shaper } = boot();
      const coalesce = { key: stock("P1"), window: 10 };
      shaper.arrive(item({ coalesce }), T);
      expect(shaper.arrive(item({ coalesce, receivedAt: T + 10_001 }), T + 10_001)).toEqual({
        held: "coalescing",
        due: T + 20_001,
      });
    });
  });

  it("supersedes an older notification that arrives after a newer one, and a retry of an older state", () => {
    return withStorage((boot) => {
      const { shaper } = boot();
      const coalesce = { key: stock("P1"), window: 10 };
      const newer = item({ coalesce, receivedAt: T + 5000 });
      shaper.arrive(newer, T + 5000);
      // While the newer one's window is open, an older one waits beside it, superseded when the newer goes.
      const late = item({ coalesce, receivedAt: T + 4000, text: "late" });
      expect(shaper.arrive(late, T + 5100)).toEqual({ held: "coalescing", due: T + 15_000 });
      expect(shaper.carried(coalesce.key)).toEqual(["late"]);
      // After it went: an older state sent earlier and retrying is superseded by it at once.
      expect(shaper.arrive(item({ coalesce, receivedAt: T, attempts: 2 }), T + 16_000)).toEqual({
        superseded: newer.deliveryId,
      });
      // The latest state's own retry goes on, without a new window.
      expect(shaper.arrive({ ...newer, attempts: 1 }, T + 20_000)).toEqual({ free: true });
    });
  });

  it("never coalesces a replay", () => {
    return withStorage((boot) => {
      const { shaper } = boot();
      const coalesce = { key: stock("P1"), window: 10 };
      shaper.arrive(item({ coalesce, receivedAt: T + 5000 }), T + 5000);
      expect(shaper.arrive(item({ coalesce, receivedAt: T, run: 1 }), T + 6000)).toEqual({ free: true });
    });
  });

  it("keeps its window and what it holds across a restart", () => {
    return withStorage((boot) => {
      const coalesce = { key: stock("P1"), window: 10 };
      const first = item({ coalesce });
      boot().shaper.arrive(first, T);
      const after = boot();
      expect(after.held.inLine).toBe(0);
      const second = item({ coalesce, receivedAt: T + 4000 });
      expect(after.shaper.arrive(second, T + 4000)).toEqual({ held: "coalescing", due: T + 10_000 });
      expect(after.held.next(new Set(), T + 10_000)?.delivery_id).toBe(second.deliveryId);
      // What it replaced, and the latest, are remembered across another restart.
      const again = boot();
      expect(again.shaper.carried(coalesce.key)).toHaveLength(1);
      expect(again.shaper.arrive(item({ coalesce, receivedAt: T + 1000 }), T + 11_000)).toEqual({
        superseded: second.deliveryId,
      });
    });
  });
});
