import { describe, RelayError } from "../errors.ts";
import { RULES_KEY } from "../kv-keys.ts";
import { log } from "../log.ts";
import { type CompiledRules, compileRules } from "./matcher.ts";
import { rulesHash } from "./save.ts";
import { EMPTY_RULES, validateRulesText } from "./schema.ts";

interface Cached {
  text: string | null;
  compiled: CompiledRules;
  expiresAt: number;
}

// One per isolate, shared by concurrent requests: at most one KV read is in flight, and a document is
// compiled once per version (same text, same compiled index).
let cached: Cached | undefined;
let inflight: Promise<CompiledRules> | undefined;

/** Forget the cached rules (after PUT /admin/rules, and between tests). */
export function resetRulesCache(): void {
  cached = undefined;
  inflight = undefined;
}

/**
 * The current rules, compiled. Read from KV at most every `cacheSeconds`. No document → no routes
 * (warning logged). KV failing or an invalid document in KV → 503 so the sender retries.
 */
export function loadRules(kv: KVNamespace, cacheSeconds: number, now = Date.now()): Promise<CompiledRules> {
  if (cached !== undefined && now < cached.expiresAt) return Promise.resolve(cached.compiled);
  inflight ??= refresh(kv, cacheSeconds).finally(() => {
    inflight = undefined;
  });
  return inflight;
}

async function refresh(kv: KVNamespace, cacheSeconds: number): Promise<CompiledRules> {
  let text: string | null;
  try {
    text = await kv.get(RULES_KEY, "text");
  } catch (error) {
    log("error", "rules_unavailable", { error: describe(error) });
    throw new RelayError("rules_unavailable", "The routing rules could not be read; try again shortly.");
  }
  const expiresAt = Date.now() + cacheSeconds * 1000;
  if (cached !== undefined && cached.text === text) {
    cached.expiresAt = expiresAt;
    return cached.compiled;
  }
  const compiled = compile(text);
  // Which rules shaped a transformed body, for its attempt's record (the rules history knows it by this hash).
  if (text !== null) compiled.hash = await rulesHash(text);
  cached = { text, compiled, expiresAt };
  return compiled;
}

function compile(text: string | null): CompiledRules {
  if (text === null) {
    log("warn", "rules_missing", { message: `No rules document in KV key "${RULES_KEY}": nothing is routed.` });
    return compileRules(EMPTY_RULES);
  }
  const validation = validateRulesText(text);
  if (!validation.ok) {
    const { issues } = validation;
    log("error", "stored_rules_invalid", { issues });
    throw new RelayError(
      "stored_rules_invalid",
      `The rules document in KV is invalid, so nothing can be routed; fix it with the rules CLI or PUT /admin/rules.`,
      { issues },
    );
  }
  return compileRules(validation.rules);
}
