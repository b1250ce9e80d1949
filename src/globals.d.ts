/**
 * What V8 (workerd, Node 22) has and TypeScript's libs do not yet: JSON.parse source text access and
 * JSON.rawJSON (TC39 "JSON.parse source text access", stage 3). Used by src/json.ts.
 */
interface JSON {
  rawJSON(text: string): { readonly rawJSON: string };
  isRawJSON(value: unknown): boolean;
  parse(
    text: string,
    // biome-ignore lint/suspicious/noExplicitAny: the same signature as lib.es5's JSON.parse reviver, plus context
    reviver: (this: any, key: string, value: any, context?: { source?: string }) => any,
  ): unknown;
}
