/**
 * bench/ imports the relay's pure functions, whose types name Web and Workers globals that the Workers types
 * declare but the Node tsconfig (lib es2024 + @types/node) does not. Node has the Web ones at run time; the
 * door's `readSignedBody` (src/ingress/body.ts) uses the Workers ones only when keeping a body in R2, which the
 * bench never asks of it in Node, but for `readAtLeast`, which bench/growth-memory.ts supplies.
 */
type BufferSource = NodeJS.ArrayBufferView | ArrayBuffer;
type CryptoKey = import("node:crypto").webcrypto.CryptoKey;
interface R2Bucket {
  put(key: string, value: ReadableStream, options?: unknown): Promise<unknown>;
}
declare class FixedLengthStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor(expectedLength: number | bigint);
}
declare module "stream/web" {
  interface ReadableStreamBYOBReader {
    /** workerd's: reads into `view` until at least `minElements` are in it, or the stream ended. */
    readAtLeast(minElements: number, view: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>>;
  }
}
