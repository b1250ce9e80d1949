import jsonata from "jsonata";

/**
 * Transformations (docs/rules.md, "Shaping deliveries"): a destination's `transform` is a JSONata expression applied
 * to each notification it is sent; its result, as JSON, is the body the receiver gets. JSONata is an interpreter
 * (Workers allow no `eval`). An expression is compiled once per isolate and text; evaluation is bounded:
 *
 * - in steps, not milliseconds: inside a Worker the clock does not move while code runs, so a time limit could
 *   never fire. MAX_STEPS evaluation steps is far beyond any mapping (a 10-field one takes about 60) and ends a
 *   runaway one within milliseconds;
 * - in depth (MAX_DEPTH nested evaluations: runaway recursion), sequence length (MAX_SEQUENCE) and output size
 *   (MAX_OUTPUT_BYTES of JSON).
 *
 * Numbers are JavaScript numbers inside an expression: digits beyond what a double holds are not kept (the
 * untransformed body keeps the sender's text exactly).
 */

export const MAX_STEPS = 100_000;
export const MAX_DEPTH = 200;
export const MAX_SEQUENCE = 100_000;
export const MAX_OUTPUT_BYTES = 1024 * 1024;
/** The longest expression the rules accept. */
export const MAX_EXPRESSION_LENGTH = 10_000;

/** What an expression can read besides the notification (`$`). */
export interface TransformBindings {
  action: string;
  callId: string;
  /** ISO-8601. */
  receivedAt: string;
  destination: string;
}

/** Why a transformation gave no body: its delivery becomes a dead letter `transform_failed` saying this. */
export class TransformFailed extends Error {
  override name = "TransformFailed";
}

interface JsonataError {
  code?: string;
  position?: number;
  message?: string;
}

const STEPS = Symbol("steps");
const ENTRY = Symbol.for("jsonata.__evaluate_entry");

/** Counts the steps of one evaluation (on its own frame), and stops it past MAX_STEPS. */
function countStep(_expr: unknown, _input: unknown, environment: { base: Record<symbol, number> }): void {
  const base = environment.base;
  base[STEPS] = (base[STEPS] ?? 0) + 1;
  if (base[STEPS] > MAX_STEPS) {
    throw { code: "R0001", message: `the expression ran for more than ${MAX_STEPS} steps` };
  }
}

const compiled = new Map<string, jsonata.Expression>();
/** Compiled expressions kept per isolate; the rules hold a handful. */
const CACHE_SIZE = 64;

/** The compiled expression, or a JSONata error (with `code`, `position`, `message`) thrown. */
export function compileTransform(expression: string): jsonata.Expression {
  let expr = compiled.get(expression);
  if (expr === undefined) {
    expr = jsonata(expression, { stack: MAX_DEPTH, sequence: MAX_SEQUENCE });
    expr.assign(ENTRY as unknown as string, countStep);
    if (compiled.size >= CACHE_SIZE) compiled.delete(compiled.keys().next().value!);
    compiled.set(expression, expr);
  }
  return expr;
}

/** Why `expression` does not compile, in a sentence with JSONata's position and code; undefined when it does. */
export function compileProblem(expression: string): string | undefined {
  try {
    compileTransform(expression);
    return undefined;
  } catch (error) {
    const e = error as JsonataError;
    const where = e.position !== undefined ? ` at position ${e.position}` : "";
    return `does not compile: ${e.message ?? String(error)} (JSONata ${e.code ?? "error"}${where})`;
  }
}

/** The JSON text a receiver gets for `notification` under `expression`; TransformFailed saying why otherwise. */
export async function transform(
  expression: string,
  notification: unknown,
  bindings: TransformBindings,
): Promise<string> {
  let result: unknown;
  try {
    result = await compileTransform(expression).evaluate(notification, {
      action: bindings.action,
      callId: bindings.callId,
      receivedAt: bindings.receivedAt,
      destination: bindings.destination,
    });
  } catch (error) {
    const e = error as JsonataError;
    const where = e.position !== undefined && e.position > 0 ? ` at position ${e.position}` : "";
    throw new TransformFailed(`${e.message ?? String(error)} (JSONata ${e.code ?? "error"}${where})`);
  }
  if (result === undefined) throw new TransformFailed("the expression returned nothing for this notification");
  let text: string | undefined;
  try {
    text = JSON.stringify(result);
  } catch (error) {
    throw new TransformFailed(`the result is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (text === undefined) throw new TransformFailed("the result is not JSON (a function)");
  // UTF-16 length bounds the UTF-8 bytes from below; count exactly only near the limit.
  if (text.length > MAX_OUTPUT_BYTES / 3 && new TextEncoder().encode(text).byteLength > MAX_OUTPUT_BYTES) {
    throw new TransformFailed(`the result is larger than ${MAX_OUTPUT_BYTES} bytes of JSON`);
  }
  return text;
}
