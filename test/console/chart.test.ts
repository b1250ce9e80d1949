import { describe, expect, it } from "vitest";
import { HourlyChart, latencyLabel, niceMax, RangeChoice, SERIES } from "../../src/console/chart.tsx";
import type { HourFigures } from "../../src/ledger/hourly.ts";

/** The console's pictures (docs/console.md, "Pictures"): SVG drawn on the server, with a table of the same figures. */
const hours = (n: number, f: (i: number) => Partial<HourFigures>): HourFigures[] =>
  Array.from({ length: n }, (_, i) => ({
    hour: new Date(Date.parse("2026-12-07T00:00:00Z") + i * 3_600_000).toISOString(),
    delivered: 0,
    retried: 0,
    dead: 0,
    p95Ms: null,
    ...f(i),
  }));

const render = (props: Parameters<typeof HourlyChart>[0]) => String(HourlyChart(props));

describe("an hourly chart", () => {
  it("stacks each hour's delivered, retried and dead attempts to scale, with a p95 line and a table", () => {
    const html = render({
      id: "wms-24h",
      title: "wms, last 24 hours",
      hours: hours(24, (i) =>
        i === 3 ? { delivered: 60, retried: 30, dead: 10, p95Ms: 200 } : i === 4 ? { delivered: 5, p95Ms: 100 } : {},
      ),
    });
    // Hour 3 fills the plot (100 of an axis topped at 100): its three bars meet the top.
    const heights = [
      ...html.matchAll(/<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" fill="(#[0-9a-f]{6})"/g),
    ].map((m) => ({ y: Number(m[1]), h: Number(m[2]), fill: m[3] }));
    const hour3 = heights.slice(0, 3);
    expect(hour3.map((b) => b.fill)).toEqual(SERIES.map((s) => s.fill));
    expect(hour3[0]!.h / hour3[1]!.h).toBeCloseTo(2, 5);
    expect(hour3[1]!.h / hour3[2]!.h).toBeCloseTo(3, 5);
    expect(Math.min(...hour3.map((b) => b.y))).toBeCloseTo(12, 5);
    expect(html).toContain("<polyline");
    expect(html).toContain('role="img"');
    expect(html).toContain('aria-labelledby="wms-24h-title wms-24h-desc"');
    expect(html).toContain("105 attempts in 24 hours");
    // The table holds every hour, with the figures.
    expect(html.match(/<tr>/g)).toHaveLength(25);
    expect(html).toContain(
      '<td class="num">60</td><td class="num">30</td><td class="num">10</td><td class="num">200</td>',
    );
  });

  it("marks each hour's p95, so that one hour alone shows its latency; counts are labelled in whole numbers", () => {
    const html = render({
      id: "one",
      title: "one hour",
      hours: hours(24, (i) => (i === 23 ? { dead: 1, p95Ms: 65 } : {})),
    });
    expect(html).not.toContain("<polyline");
    const marks = [...html.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)];
    expect(marks).toHaveLength(1);
    // 65 ms on an axis topped at 100 ms: 65 % of the way up the plot from its bottom.
    const axis = [...html.matchAll(/<line x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)" y2="[\d.]+" stroke="#d0d7de"/g)].map(
      (m) => Number(m[1]),
    );
    const [bottom, top] = [Math.max(...axis), Math.min(...axis)];
    expect((bottom - Number(marks[0]![2])) / (bottom - top)).toBeCloseTo(0.65, 5);
    // The count axis tops at 1: 0 and 1 are labelled, never 0.5.
    expect(html).not.toMatch(/>0\.5</);
  });

  it("draws an empty day without bars or line, and labels a week by day", () => {
    expect(render({ id: "e", title: "empty", hours: hours(24, () => ({})) })).not.toMatch(/<rect x|<polyline/);
    const week = render({ id: "w", title: "week", hours: hours(168, (i) => ({ delivered: i })) });
    expect(week).toContain(">12-07<");
    expect(week).toContain(">12-13<");
  });

  it("tops its axis at a round 1, 2 or 5 times a power of ten", () => {
    expect([0, 1, 3, 7, 10, 11, 120, 4999].map(niceMax)).toEqual([1, 1, 5, 10, 10, 20, 200, 5000]);
  });

  it("labels latency in ms, and seconds from 1000 ms", () => {
    expect([0, 50, 500, 1000, 2500, 50_000].map(latencyLabel)).toEqual([
      "0 ms",
      "50 ms",
      "500 ms",
      "1 s",
      "2.5 s",
      "50 s",
    ]);
  });

  it("offers the ranges as links that keep the page's other parameters, the current one marked", () => {
    const html = String(
      RangeChoice({
        path: "/console",
        params: new URLSearchParams("refresh=30&range=7d"),
        range: "7d",
        at: "pictures",
      }),
    );
    expect(html).toContain('<a href="/console?refresh=30#pictures">Last 24 hours</a>');
    expect(html).toContain('<a href="/console?refresh=30&amp;range=7d#pictures" aria-current="true">Last 7 days</a>');
  });
});
