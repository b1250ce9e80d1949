/**
 * The memory of a Worker's workerd process under `wrangler dev` (Linux /proc): its current and peak resident set.
 * `wrangler dev` runs two workerd processes in the Worker's process group, a proxy in front and the one that runs
 * the Worker with its local storage (R2, D1, Queues simulations included); the latter has files of the state
 * folder open, which is how it is told apart.
 */
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import type { WranglerDev } from "../../scripts/lib/wrangler-dev.ts";

/** The pid of the workerd process that runs `dev`'s Worker. */
export function workerdOf(dev: WranglerDev): number {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== dev.process.pid) continue;
      if (!readFileSync(`/proc/${entry}/comm`, "utf8").startsWith("workerd")) continue;
      const open = readdirSync(`/proc/${entry}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${entry}/fd/${fd}`).startsWith(dev.persistTo);
        } catch {
          return false;
        }
      });
      if (open) return Number(entry);
    } catch {
      // gone, or not ours to read
    }
  }
  throw new Error(`no workerd process with ${dev.persistTo} open in process group ${dev.process.pid}`);
}

/** Resets the peak resident set (VmHWM) to the current one. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

/** Current (VmRSS) and peak (VmHWM) resident set, in bytes. */
export function residentSet(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rss: kib("VmRSS") * 1024, peak: kib("VmHWM") * 1024 };
}
