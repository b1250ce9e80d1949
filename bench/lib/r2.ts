/**
 * What a Worker's local R2 buckets hold after a run, read straight from miniflare's object index under the state
 * folder (v3/r2/miniflare-R2BucketObject/*.sqlite, node:sqlite, read-only): every object's key and size.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

interface R2Object {
  key: string;
  size: number;
}

export function r2Objects(persistTo: string): R2Object[] {
  const folder = join(persistTo, "v3", "r2", "miniflare-R2BucketObject");
  let files: string[];
  try {
    files = readdirSync(folder).filter((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite");
  } catch {
    return [];
  }
  return files.flatMap((file) => {
    const db = new DatabaseSync(join(folder, file), { readOnly: true });
    try {
      return (db.prepare("SELECT key, size FROM _mf_objects").all() as { key: string; size: number }[]).map((row) => ({
        key: String(row.key),
        size: Number(row.size),
      }));
    } finally {
      db.close();
    }
  });
}

/** Objects and bytes under each of `prefixes` (the first that matches), and under none of them as "other". */
export function byPrefix(objects: readonly R2Object[], prefixes: readonly string[]) {
  const out = Object.fromEntries([...prefixes, "other"].map((p) => [p, { objects: 0, bytes: 0 }])) as Record<
    string,
    { objects: number; bytes: number }
  >;
  for (const object of objects) {
    const bucket = out[prefixes.find((p) => object.key.startsWith(p)) ?? "other"]!;
    bucket.objects++;
    bucket.bytes += object.size;
  }
  return out;
}
