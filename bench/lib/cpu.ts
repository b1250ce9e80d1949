/**
 * CPU time used by a process group (wrangler dev: its Node process, workerd and helpers), from /proc.
 * CPU per request is far less sensitive to other load on the machine than requests/s, so the report
 * gives both.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100;

/** utime + stime in ms of every process in the group (workerd, wrangler's Node and helpers). */
export function groupCpuMs(pgid: number): number {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is state (field 3); pgrp is field 5, utime 14, stime 15.
    if (Number(fields[2]) !== pgid) continue;
    total += ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  }
  return total;
}

/** utime + stime in ms and parent of every process now, by pid (kernel threads and unreadable ones left out). */
function processes(): Map<number, { ppid: number; cpuMs: number; start: string }> {
  const all = new Map<number, { ppid: number; cpuMs: number; start: string }>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // ppid is field 4, flags 9 (PF_KTHREAD = 0x200000), starttime 22.
      if ((Number(fields[6]) & 0x200000) !== 0) continue;
      all.set(Number(entry), {
        ppid: Number(fields[1]),
        cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND,
        start: fields[19]!,
      });
    } catch {
      // gone
    }
  }
  return all;
}

/**
 * CPU used by processes other than this one and its descendants (another test run, a build) while the bench runs,
 * sampled every `everyMs`: what shared the machine with the measurements. stop() answers the average in CPUs and
 * the busiest 30 s.
 */
export function foreignCpu(everyMs = 2000): { stop(): { average: number; busiest30s: number } } {
  const self = process.pid;
  const ours = (all: Map<number, { ppid: number }>, pid: number) => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (p === self) return true;
      p = all.get(p)?.ppid ?? 0;
    }
    return false;
  };
  let last = processes();
  const samples: { ms: number; cpuMs: number }[] = [];
  let lastAt = performance.now();
  const timer = setInterval(() => {
    const now = processes();
    const at = performance.now();
    let used = 0;
    for (const [pid, p] of now) {
      if (ours(now, pid)) continue;
      const before = last.get(pid);
      used += before !== undefined && before.start === p.start ? p.cpuMs - before.cpuMs : p.cpuMs;
    }
    samples.push({ ms: at - lastAt, cpuMs: used });
    last = now;
    lastAt = at;
  }, everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      const total = samples.reduce((sum, s) => sum + s.ms, 0);
      const average = samples.reduce((sum, s) => sum + s.cpuMs, 0) / Math.max(1, total);
      const window = Math.max(1, Math.round(30_000 / everyMs));
      let busiest = 0;
      for (let i = 0; i + window <= samples.length; i++) {
        const part = samples.slice(i, i + window);
        busiest = Math.max(busiest, part.reduce((sum, s) => sum + s.cpuMs, 0) / part.reduce((sum, s) => sum + s.ms, 0));
      }
      return { average, busiest30s: busiest };
    },
  };
}
