import { RelayError } from "../errors.ts";

/**
 * The raw request body, refused with 413 as soon as it is known to exceed `limit` bytes: from
 * Content-Length when given, else while streaming (chunked bodies), without reading the rest.
 */
export async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  if (request.body === null) return new Uint8Array(0);

  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

function tooLarge(limit: number): RelayError {
  return new RelayError(
    413,
    "body_too_large",
    `The body exceeds the relay's limit of ${limit} bytes (MAX_BODY_BYTES).`,
    {
      limit,
    },
  );
}
