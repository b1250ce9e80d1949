/**
 * `rules.schema.json`, generated from the one rules schema (src/rules/schema.ts) so editors complete and
 * check rules files. Pure (no Node APIs): the rules CLI writes it and a workers test keeps it current.
 *
 * JSON Schema cannot say everything the Zod schema checks (route names unique, `to` naming a known
 * destination, reserved headers, http only for loopback, `*` only at the end): `npm run rules -- validate`
 * and the admin API check those.
 */
import { z } from "zod";
import { rulesSchema } from "../../src/rules/schema.ts";

export const RULES_SCHEMA_FILE = "rules.schema.json";

export function rulesJsonSchema(): Record<string, unknown> {
  // "input": what a person writes (defaults make fields optional), not what the relay holds after parsing.
  const generated = z.toJSONSchema(rulesSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    title: "extend-relay routing rules",
    description:
      'The routing rules document stored in KV (binding RULES, key "rules"). Generated from src/rules/schema.ts by `npm run rules -- schema`; do not edit by hand. `npm run rules -- validate <file>` also checks what JSON Schema cannot (unique route names, known destinations, reserved headers).',
    ...rest,
  };
}

/** The file's exact text: two-space indented, with a final newline. */
export function rulesJsonSchemaText(): string {
  return `${JSON.stringify(rulesJsonSchema(), null, 2)}\n`;
}
