/**
 * GET /healthz → 200. GET /?size=<bytes>&iterations=<n> → median µs per verification over 5 batches of
 * n, for the relay's verifySignature and for node:crypto createHmac + timingSafeEqual, on the same body.
 * Bench-only; typed structurally so that it also type-checks under the Node tsconfig that covers bench/.
 */
import { parseSignatureHeader, signBody, verifySignature } from "../../src/extend/signature.ts";
import { median } from "../lib/stats.ts";

interface NodeCrypto {
  createHmac(algorithm: string, key: string): { update(data: Uint8Array): { digest(): Uint8Array } };
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
}

const SECRET = "bench-extend-secret";

async function perCallMicros(iterations: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  const batches: number[] = [];
  for (let batch = 0; batch < 5; batch++) {
    const started = Date.now();
    for (let i = 0; i < iterations; i++) await fn();
    batches.push(((Date.now() - started) * 1000) / iterations);
  }
  return median(batches);
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return Response.json({ status: "ok" });
    const size = Number(url.searchParams.get("size") ?? "1024");
    const iterations = Number(url.searchParams.get("iterations") ?? "1000");
    const nodeCrypto = (
      globalThis as { process?: { getBuiltinModule?(id: string): unknown } }
    ).process?.getBuiltinModule?.("node:crypto") as NodeCrypto | undefined;
    const body = new Uint8Array(size).fill(0x61);
    const signature = parseSignatureHeader(await signBody(body, SECRET));
    if (typeof signature === "string") return new Response("bad signature", { status: 500 });
    const secrets = [SECRET];
    const relay = await perCallMicros(iterations, async () => {
      if (!(await verifySignature(body, signature, secrets))) throw new Error("mismatch");
    });
    const node =
      nodeCrypto === undefined
        ? null
        : await perCallMicros(iterations, () => {
            const mac = nodeCrypto.createHmac("sha256", SECRET).update(body).digest();
            if (!nodeCrypto.timingSafeEqual(mac, signature)) throw new Error("mismatch");
          });
    return Response.json({ size, relayMicros: relay, nodeMicros: node });
  },
};
