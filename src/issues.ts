import type * as z from "zod";

/** A validation problem with the path it is at, e.g. `routes[2].to[0]`. */
export interface Issue {
  path: string;
  message: string;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "(root)" : out;
}

/** Zod's issues as path-named sentences, at most `limit` of them. */
export function issuesOf(error: z.ZodError, limit = 50): Issue[] {
  return error.issues.slice(0, limit).map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}
