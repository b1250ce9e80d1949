/**
 * Line diffs of rules documents, for the rules CLI's `diff` and the console's history (docs/rules.md, "History").
 */

/** Pretty JSON with object keys sorted and `$schema` dropped: equal lines mean equal rules. */
export function canonicalLines(document: unknown): string[] {
  if (typeof document === "string") return document.split("\n");
  const sort = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sort);
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((key) => [key, sort((value as Record<string, unknown>)[key])]),
      );
    }
    return value;
  };
  const copy = sort(document);
  if (copy !== null && typeof copy === "object" && !Array.isArray(copy))
    delete (copy as Record<string, unknown>).$schema;
  return JSON.stringify(copy, null, 2).split("\n");
}

/**
 * A line diff (longest common subsequence): each line prefixed with " ", "-" or "+". Quadratic in lines: the
 * callers diff rules documents, a few thousand lines at most.
 */
export function lineDiff(before: string[], after: string[]): string[] {
  const n = before.length;
  const m = after.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = before[i] === after[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && before[i] === after[j]) {
      out.push(` ${before[i]}`);
      i++;
      j++;
    } else if (j < m && (i === n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) {
      out.push(`+${after[j]}`);
      j++;
    } else {
      out.push(`-${before[i]}`);
      i++;
    }
  }
  return out;
}

/** Only the changed lines and `context` unchanged lines around them; "…" marks a gap. */
export function withContext(lines: string[], context: number): string[] {
  const keep = lines.map(() => false);
  lines.forEach((line, index) => {
    if (line.startsWith(" ")) return;
    for (let k = Math.max(0, index - context); k <= Math.min(lines.length - 1, index + context); k++) keep[k] = true;
  });
  const out: string[] = [];
  let skipped = false;
  lines.forEach((line, index) => {
    if (keep[index]) {
      if (skipped) out.push("…");
      skipped = false;
      out.push(line);
    } else skipped = true;
  });
  return out;
}
