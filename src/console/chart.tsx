import type { FC } from "hono/jsx";
import type { HourFigures } from "../ledger/hourly.ts";
import type { LedgerRoom } from "../ledger/room.ts";

/**
 * The console's pictures (docs/console.md, "Pictures"): a destination's attempts per hour (delivered, retried,
 * dead) as stacked bars and their p95 latency as a line, drawn on the server as SVG (no script; the page's
 * Content-Security-Policy allows no inline style, and SVG's presentation attributes are not styles). Every chart
 * has a table of the same figures for screen readers and for anyone who wants the numbers.
 */

/**
 * The drawing's own units. It scales with the width of its box, evenly (a phone's is about two thirds of this, a
 * laptop's about this); the stylesheet makes its labels larger below 640 px, and the paddings leave them room.
 */
const WIDTH = 480;
const HEIGHT = 220;
const PAD = { left: 48, right: 60, top: 12, bottom: 26 };
const PLOT_W = WIDTH - PAD.left - PAD.right;
const PLOT_H = HEIGHT - PAD.top - PAD.bottom;

/** Colours with at least 3:1 contrast against white (WCAG 1.4.11), told apart by more than hue in the legend. */
export const SERIES = [
  { key: "delivered", label: "delivered", fill: "#1a7f37" },
  { key: "retried", label: "retried", fill: "#b35900" },
  { key: "dead", label: "dead", fill: "#cf222e" },
] as const;
const P95_STROKE = "#1f2937";

/** A round top for an axis: 1, 2 or 5 times a power of ten, at least `value`. */
export function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((n) => n >= value)!;
}

const hourLabel = (iso: string, days: boolean) => (days ? iso.slice(5, 10) : `${iso.slice(11, 13)}:00`);

/** A latency axis label: `200 ms`, `2.5 s`. */
export const latencyLabel = (ms: number): string => (ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`);

export interface ChartProps {
  /** Names the chart for assistive technology and its table. */
  title: string;
  hours: readonly HourFigures[];
  /** An id unique on the page (the chart's title and description refer to it). */
  id: string;
}

/** Bars per hour, the p95 line over them, the axes, a legend; then the figures as a table. */
export const HourlyChart: FC<ChartProps> = ({ title, hours, id }) => {
  const n = Math.max(1, hours.length);
  const counts = hours.map((h) => h.delivered + h.retried + h.dead);
  const top = niceMax(Math.max(0, ...counts));
  const p95s = hours.map((h) => h.p95Ms).filter((v): v is number => v !== null);
  const p95Top = niceMax(Math.max(0, ...p95s));
  const step = PLOT_W / n;
  const bar = Math.max(1, step * 0.8);
  const y = (value: number) => PAD.top + PLOT_H - (value / top) * PLOT_H;
  const yLatency = (ms: number) => PAD.top + PLOT_H - (ms / p95Top) * PLOT_H;
  const days = hours.length > 48;
  const every = days ? 24 : 6;
  const total = counts.reduce((sum, c) => sum + c, 0);
  const line = hours.flatMap((h, i) =>
    h.p95Ms === null ? [] : [{ x: (PAD.left + i * step + step / 2).toFixed(1), y: yLatency(h.p95Ms).toFixed(1) }],
  );
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        width={WIDTH}
        height={HEIGHT}
        role="img"
        aria-labelledby={`${id}-title ${id}-desc`}
      >
        <title id={`${id}-title`}>{title}</title>
        <desc id={`${id}-desc`}>
          {`${total} attempt${total === 1 ? "" : "s"} in ${hours.length} hours; the table below has each hour's figures.`}
        </desc>
        {[0, 0.5, 1].map((f) => (
          <g>
            <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y(top * f)} y2={y(top * f)} stroke="#d0d7de" />
            {Number.isInteger(top * f) && (
              <text x={PAD.left - 4} y={y(top * f) + 4} text-anchor="end" font-size="11" fill="#4b5563">
                {String(top * f)}
              </text>
            )}
            {p95s.length > 0 && (
              <text x={WIDTH - 2} y={yLatency(p95Top * f) + 4} text-anchor="end" font-size="11" fill="#4b5563">
                {latencyLabel(p95Top * f)}
              </text>
            )}
          </g>
        ))}
        {hours.map((h, i) => {
          let base = 0;
          const x = PAD.left + i * step + (step - bar) / 2;
          return (
            <g>
              {SERIES.map((s) => {
                const value = h[s.key];
                if (value === 0) return null;
                const rect = (
                  <rect x={x} y={y(base + value)} width={bar} height={y(base) - y(base + value)} fill={s.fill} />
                );
                base += value;
                return rect;
              })}
              {i % every === 0 && (
                <text x={x} y={HEIGHT - 8} font-size="11" fill="#4b5563">
                  {hourLabel(h.hour, days)}
                </text>
              )}
            </g>
          );
        })}
        {line.length > 1 && (
          <polyline
            points={line.map((p) => `${p.x},${p.y}`).join(" ")}
            fill="none"
            stroke={P95_STROKE}
            stroke-width="2"
          />
        )}
        {line.map((p) => (
          <circle cx={p.x} cy={p.y} r="3" fill={P95_STROKE} />
        ))}
      </svg>
      <figcaption>
        <ul class="legend">
          {SERIES.map((s) => (
            <li>
              <svg viewBox="0 0 10 10" width="10" height="10" aria-hidden="true">
                <rect width="10" height="10" fill={s.fill} />
              </svg>
              {` ${s.label}`}
            </li>
          ))}
          <li>
            <svg viewBox="0 0 14 10" width="14" height="10" aria-hidden="true">
              <line x1="0" x2="14" y1="5" y2="5" stroke={P95_STROKE} stroke-width="2" />
            </svg>
            {" p95 latency (right axis)"}
          </li>
        </ul>
      </figcaption>
      <details>
        <summary>{`${title}: the figures`}</summary>
        <div class="scroll">
          <table>
            <caption class="visually-hidden">{title}</caption>
            <thead>
              <tr>
                <th scope="col">Hour (UTC)</th>
                {SERIES.map((s) => (
                  <th scope="col" class="num">
                    {s.label}
                  </th>
                ))}
                <th scope="col" class="num">
                  p95 ≤ ms
                </th>
              </tr>
            </thead>
            <tbody>
              {hours.map((h) => (
                <tr>
                  <th scope="row">{`${h.hour.slice(5, 10)} ${h.hour.slice(11, 16)}`}</th>
                  {SERIES.map((s) => (
                    <td class="num">{h[s.key]}</td>
                  ))}
                  <td class="num">{h.p95Ms ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
};

/** The time ranges a picture covers (`?range=`): the last 24 hours (the default) or the last 7 days, by the hour. */
export const RANGES = ["24h", "7d"] as const;
export type Range = (typeof RANGES)[number];
const RANGE_HOURS: Record<Range, number> = { "24h": 24, "7d": 168 };
const RANGE_LABELS: Record<Range, string> = { "24h": "Last 24 hours", "7d": "Last 7 days" };
const HOUR = 3_600_000;

/** The pictures' title words for a range: `last 24 hours`. */
export const rangeWords = (range: Range): string => RANGE_LABELS[range].toLowerCase();

/** Each named destination's figures for every hour of `range`, the current hour last (from the ledger). */
export function hoursOf(
  ledger: Pick<LedgerRoom, "hourly">,
  names: readonly string[],
  range: Range,
  now = Date.now(),
): Promise<Record<string, HourFigures[]>> {
  return ledger.hourly({ since: now - (RANGE_HOURS[range] - 1) * HOUR, until: now, destinations: names });
}

/**
 * The choice of range, as links (no script): the page's address with `?range=` (none for the default), its other
 * parameters kept, back at the pictures (`#id`).
 */
export const RangeChoice: FC<{ path: string; params: URLSearchParams; range: Range; at: string }> = ({
  path,
  params,
  range,
  at,
}) => {
  const kept = [...params].filter(([key]) => key !== "range" && key !== "cursor");
  const href = (r: Range) => {
    const query = new URLSearchParams([...kept, ...(r === "24h" ? [] : [["range", r]])]).toString();
    return `${path}${query === "" ? "" : `?${query}`}#${at}`;
  };
  return (
    <nav class="range" aria-label="Time range">
      <ul>
        {RANGES.map((r) => (
          <li>
            <a href={href(r)} aria-current={r === range ? "true" : undefined}>
              {RANGE_LABELS[r]}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
};
