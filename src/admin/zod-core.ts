/**
 * What hono-openapi (through @standard-community/standard-json) takes from `zod/v4/core`: only `toJSONSchema`.
 * Its `import("zod/v4/core")` would bundle all of Zod's core, its locales included (about 650 KiB more;
 * DEVELOPERS.md, "Bundle size"); wrangler.toml's `[alias]` points that import here instead.
 */
export { toJSONSchema } from "zod";
