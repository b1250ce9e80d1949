/**
 * The console's one stylesheet, served at /console/style.css (the Content-Security-Policy allows styles
 * from the Worker's own origin only). Plain CSS: colours meet WCAG AA contrast, focus is always visible, and
 * the layout works from 375 px wide up.
 */
/**
 * Records as cards, for a phone: the record's name, then its state and its actions (`.lead`), then each fact
 * under its label (`data-label`). Only cells that hold no link or button are moved (CSS `order`), so the order
 * of Tab stops stays the order on screen.
 */
function cards(t: string): string {
  return `
  ${t}, ${t} tbody, ${t} tfoot { display: block; }
  ${t} thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
  ${t} caption { display: block; text-align: left; }
  ${t} tr { display: flex; flex-direction: column; border: 1px solid var(--line); border-radius: .4rem; padding: .4rem .6rem; margin: 0 0 .6rem; }
  ${t} td, ${t} th { display: block; border: 0; padding: .15rem 0; min-width: 0; text-align: left; overflow-wrap: anywhere; }
  ${t} th[scope="row"] { order: -2; }
  ${t} th[scope="row"]:not([data-label]) { font-size: 1.05rem; }
  ${t} .lead { order: -1; }
  ${t} .badge { white-space: normal; }
  ${t} [data-label] { position: relative; padding-left: 8rem; }
  ${t} [data-label]:empty { display: none; }
  ${t} [data-label]::before { content: attr(data-label); position: absolute; left: 0; width: 7.5rem; font-weight: 600; color: var(--muted); }`;
}

export const STYLE = `
:root {
  --text: #1b1f24; --muted: #4b5563; --bg: #ffffff; --panel: #f6f8fa; --line: #d0d7de;
  --link: #0b57d0; --bar: #1f2937; --bar-text: #f9fafb; --focus: #b45309;
  --ok-bg: #dafbe1; --ok: #0f5323; --bad-bg: #ffebe9; --bad: #8c0c1f; --warn-bg: #fff8c5; --warn: #6b4300;
  --held-bg: #f3e8ff; --held: #5b21b6; --idle-bg: #eef0f3; --idle: #374151;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--text); background: var(--bg); line-height: 1.5;
}
* { box-sizing: border-box; }
body { margin: 0; }
a { color: var(--link); }
a:hover { text-decoration-thickness: 2px; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--bg); color: var(--link); padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: .5rem; top: .5rem; }
header.top { background: var(--bar); color: var(--bar-text); }
header.top .bar { max-width: 80rem; margin: 0 auto; padding: .5rem 1rem; display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; }
header.top .brand { font-weight: 700; color: var(--bar-text); text-decoration: none; margin-right: auto; }
header.top :focus-visible { outline-color: #fbbf24; }
header.top nav ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem .75rem; }
header.top nav a { color: var(--bar-text); text-decoration: none; padding: .25rem 0; display: inline-block; border-bottom: 3px solid transparent; }
header.top nav a:hover { border-bottom-color: #9ca3af; }
header.top nav a[aria-current="page"] { border-bottom-color: #fbbf24; font-weight: 700; }
header.top form { margin: 0; }
header.top button { background: transparent; color: var(--bar-text); border: 1px solid #9ca3af; }
main { max-width: 80rem; margin: 0 auto; padding: 1rem; }
main:focus { outline: none; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h1, h2, h3 { overflow-wrap: anywhere; }
time { white-space: nowrap; }
h2 { font-size: 1.25rem; margin: 2rem 0 .75rem; }
h3 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
code, pre, textarea, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9rem; }
.id { overflow-wrap: anywhere; }
.wrap { overflow-wrap: break-word; }
td.id, th.id { min-width: 14ch; }
td.why { min-width: 22ch; }
pre { background: var(--panel); border: 1px solid var(--line); padding: .75rem; margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.text { margin: .5rem 0 1rem; }
.text.long { max-height: 30rem; overflow: auto; }
pre.excerpt { margin: .35rem 0 .5rem; padding: .35rem .5rem; background: var(--bg); }
pre.excerpt .here { font-weight: 700; }
.diff .add { background: var(--ok-bg); color: var(--ok); }
.diff .del { background: var(--bad-bg); color: var(--bad); }
header.top .who span { color: var(--bar-text); font-size: .9rem; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; margin: .5rem 0 1rem; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--panel); white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: minmax(0, max-content) minmax(0, 1fr); gap: .25rem 1rem; margin: .5rem 0 1rem; }
dl.facts dt { font-weight: 600; color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .75rem; font-size: .85rem; font-weight: 600; white-space: nowrap; }
.s-delivered { background: var(--ok-bg); color: var(--ok); }
.s-dead { background: var(--bad-bg); color: var(--bad); }
.s-retrying { background: var(--warn-bg); color: var(--warn); }
.s-held { background: var(--held-bg); color: var(--held); }
.s-pending, .s-no_deliveries, .s-superseded { background: var(--idle-bg); color: var(--idle); }
.notice, .problem, .advice { border-left: 4px solid; padding: .6rem .9rem; margin: 0 0 1rem; }
.notice { border-color: #1a7f37; background: var(--ok-bg); }
.problem { border-color: #cf222e; background: var(--bad-bg); }
.advice { border-color: #9a6700; background: var(--warn-bg); }
.notice p, .problem p, .advice p { margin: .2rem 0; }
ul.issues { margin: .5rem 0; padding-left: 1.25rem; }
ul.issues li { margin: .25rem 0; }
.muted { color: var(--muted); }
form.stack { display: grid; gap: .75rem; max-width: 100%; }
form.filters { display: flex; flex-wrap: wrap; gap: .75rem 1rem; align-items: end; margin-bottom: 1rem; }
form.filters .field { display: grid; gap: .2rem; min-width: 10rem; flex: 1 1 10rem; }
form.filters .field:not(.wide) { max-width: 24rem; }
form.filters .wide { flex: 3 1 18rem; }
form.filters > .hint { flex-basis: 100%; margin: 0; }
.nowrap { white-space: nowrap; }
form.inline { display: inline; margin: 0; }
label { font-weight: 600; }
.hint { font-weight: 400; color: var(--muted); font-size: .9rem; }
input[type="text"], input[type="password"], input[type="search"], select, textarea {
  font: inherit; color: var(--text); background: var(--bg); border: 1px solid #6e7781; border-radius: .3rem; padding: .4rem .5rem; width: 100%;
}
select {
  appearance: none; padding-right: 2rem; text-overflow: ellipsis;
  background: var(--bg) url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 12 8'%3E%3Cpath d='M1 1l5 5 5-5' fill='none' stroke='%231b1f24' stroke-width='2'/%3E%3C/svg%3E") no-repeat right .6rem center / .75rem auto;
}
@media (forced-colors: active) { select { appearance: auto; } }
textarea { min-height: 24rem; line-height: 1.4; tab-size: 2; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9rem; }
button, a.button {
  font: inherit; cursor: pointer; border-radius: .3rem; padding: .4rem .9rem; border: 1px solid #1f4fa8; background: #0b57d0; color: #fff;
}
a.button { display: inline-block; text-decoration: none; line-height: 1.5; }
button.secondary, a.button.secondary { background: var(--bg); color: var(--link); border-color: var(--link); }
button.danger, a.button.danger { background: #b42318; border-color: #8c1a11; color: #fff; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .75rem 0; }
td .actions { margin: 0; }
nav.pager { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; margin: .75rem 0; }
nav.pager a { padding: .25rem 0; }
p.refresh { margin: -.5rem 0 1rem; font-size: .9rem; }
details > summary { cursor: pointer; color: var(--link); margin: .25rem 0 .5rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 24rem), 1fr)); gap: 1rem; }
.card { border: 1px solid var(--line); border-radius: .4rem; padding: .75rem 1rem; }
.card h2, .card h3 { margin-top: .25rem; }
main > section.card + section.card { margin-top: 1rem; }
.login { max-width: 26rem; margin: 2rem auto; }
/* Pictures (docs/console.md, "Pictures"): SVG that scales with its box, evenly; a legend; the figures folded. */
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 30rem), 1fr)); gap: 1rem; }
.chart { margin: .5rem 0 1rem; }
.chart > svg { display: block; width: 100%; max-width: 48rem; height: auto; }
.chart figcaption { margin: .25rem 0; }
.chart table { width: auto; font-size: .85rem; }
.chart table th, .chart table td { padding: .2rem .35rem; }
.chart thead th { white-space: normal; }
ul.legend { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem 1rem; font-size: .9rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
nav.range ul { list-style: none; margin: 0 0 .5rem; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; }
nav.range a { display: inline-block; padding: .25rem 0; }
nav.range a[aria-current] { color: var(--text); font-weight: 700; text-decoration: none; border-bottom: 3px solid var(--text); }
progress { width: min(100%, 20rem); vertical-align: middle; }
details.request, details.answer { margin: .5rem 0; }
details.request h4 { font-size: 1rem; margin: .75rem 0 .25rem; }
footer { max-width: 80rem; margin: 2rem auto 0; padding: 1rem; color: var(--muted); font-size: .85rem; border-top: 1px solid var(--line); }
/* Wide tables fit a tablet: their headings and times wrap. */
table time, table.records thead th { white-space: normal; }
@media (max-width: 40rem) {
  h1 { font-size: 1.35rem; }
  th, td { padding: .35rem .4rem; }
  dl.facts { grid-template-columns: minmax(0, 1fr); gap: 0; }
  dl.facts dd + dt { margin-top: .4rem; }
  /* The picture is drawn about two thirds of its size here: its labels are drawn larger to stay readable. */
  .chart > svg text { font-size: 16px; }
${cards("table.records")}
}
/* A table too wide for a tablet (the overview's ten columns, the dead letters') is cards up to 60rem. */
@media (max-width: 60rem) {
${cards("table.records.wide")}
}
`;
