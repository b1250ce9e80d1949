import { parseJsonBody } from "../json.ts";

/**
 * For the rules editor: the line of a JSON text on which each value starts, by the issue path that names it
 * (`routes[2].to[0]`, as src/issues.ts writes paths), so that an issue can say "line 23". Only used on text
 * that the depth-checked parser accepted; anything unexpected simply yields fewer lines.
 */
export function lineFinder(text: string): (path: string) => number | undefined {
  const lines = new Map<string, number>();
  try {
    // The API's depth-checked parser: past MAX_DEPTH it throws, so the recursive scan below stays shallow.
    parseJsonBody(new TextEncoder().encode(text));
    scan(text, lines);
  } catch {
    // not JSON (or, unexpectedly, JSON this scanner does not follow): no lines
  }
  return (path) => {
    // A missing member (`routes[0].to` absent) is shown at its nearest parent that is there.
    for (let at = path; ; ) {
      const line = lines.get(at);
      if (line !== undefined) return line;
      const cut = Math.max(at.lastIndexOf("."), at.lastIndexOf("["));
      if (cut <= 0) return lines.get("(root)");
      at = at.slice(0, cut);
    }
  };
}

function scan(text: string, lines: Map<string, number>): void {
  let i = 0;
  let line = 1;
  const space = () => {
    for (; i < text.length; i++) {
      const ch = text[i];
      if (ch === "\n") line++;
      else if (ch !== " " && ch !== "\t" && ch !== "\r") break;
    }
  };
  const string = (): string => {
    if (text[i] !== '"') throw new Error(`expected a string at ${i}`);
    const start = i;
    for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: string, at: number) => {
    space();
    if (!lines.has(path)) lines.set(path, at);
    const ch = text[i];
    if (ch === "{") {
      i++;
      space();
      if (text[i] === "}") return void i++;
      for (;;) {
        space();
        const keyLine = line;
        const key = string();
        space();
        i++; // :
        value(path === "(root)" ? key : `${path}.${key}`, keyLine);
        space();
        if (text[i++] === "}") return;
        if (i >= text.length) throw new Error("unterminated object");
      }
    }
    if (ch === "[") {
      i++;
      space();
      if (text[i] === "]") return void i++;
      for (let index = 0; ; index++) {
        space();
        value(`${path === "(root)" ? "" : path}[${index}]`, line);
        space();
        if (text[i++] === "]") return;
        if (i >= text.length) throw new Error("unterminated array");
      }
    }
    if (ch === '"') return void string();
    while (i < text.length && !/[\s,\]}]/.test(text[i]!)) i++;
  };
  space();
  value("(root)", line);
}
