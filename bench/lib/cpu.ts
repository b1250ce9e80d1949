/**
 * CPU time used by a process group (wrangler dev: its Node process, workerd and helpers), from /proc.
 * CPU per request is far less sensitive to other load on the machine than requests/s, so the report
 * gives both.
 */
import { readFileSync, readdirSync } from "node:fs";

const TICKS_PER_SECOND = 100;

/** utime + stime in ms of every process in the group, split into workerd and the rest. */
export function groupCpuMs(pgid: number): { workerd: number; other: number } {
  let workerd = 0;
  let other = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(")");
    const name = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    // fields[0] is state (field 3); pgrp is field 5, utime 14, stime 15.
    if (Number(fields[2]) !== pgid) continue;
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
    if (name.startsWith("workerd")) workerd += ms;
    else other += ms;
  }
  return { workerd, other };
}
