import { describe, expect, it } from "vitest";
import exampleText from "../../rules.example.json?raw";
import committed from "../../rules.schema.json?raw";
import { rulesJsonSchema, rulesJsonSchemaText } from "../../scripts/lib/rules-json-schema.ts";
import { validateRules } from "../../src/rules/schema.ts";

describe("rules.schema.json", () => {
  it("is what the rules schema generates today (regenerate with: npm run rules -- schema)", () => {
    expect(committed).toBe(rulesJsonSchemaText());
  });

  it("describes what a person writes: defaults are optional, unknown fields refused", () => {
    const schema = rulesJsonSchema() as {
      required: string[];
      additionalProperties: boolean;
      properties: {
        destinations: {
          additionalProperties: { required: string[]; properties: Record<string, { default?: unknown }> };
        };
      };
    };
    expect(schema.required).toEqual(["version", "destinations", "routes"]);
    expect(schema.additionalProperties).toBe(false);
    const destination = schema.properties.destinations.additionalProperties;
    expect(destination.required).toEqual(["url"]);
    expect(destination.properties.timeoutMs!.default).toBe(10_000);
    expect(destination.properties.maxAttempts!.default).toBe(12);
  });
});

describe("rules.example.json", () => {
  const example = JSON.parse(exampleText) as {
    $schema: string;
    destinations: Record<string, { url: string; signing?: { scheme: string } }>;
    routes: { actions: string[]; warehouses?: string[]; where?: unknown; enabled?: boolean }[];
  };

  it("points editors at the schema file and is valid without warnings", () => {
    expect(example.$schema).toBe("./rules.schema.json");
    const validation = validateRules(example);
    expect(validation).toMatchObject({ ok: true, warnings: [] });
  });

  it("sends to the demo receiver on loopback with both signing schemes, and uses actions, warehouses and where", () => {
    const destinations = Object.values(example.destinations);
    expect(destinations.length).toBeGreaterThanOrEqual(2);
    for (const d of destinations) expect(new URL(d.url).hostname).toBe("127.0.0.1");
    const schemes = destinations.map((d) => d.signing?.scheme ?? "none");
    expect(schemes).toContain("ms-signature");
    expect(schemes).toContain("standard-webhooks");
    expect(example.routes.some((r) => r.warehouses !== undefined)).toBe(true);
    expect(example.routes.some((r) => r.where !== undefined)).toBe(true);
    expect(example.routes.some((r) => r.actions.some((a) => a.endsWith("*") && a !== "*"))).toBe(true);
  });
});
