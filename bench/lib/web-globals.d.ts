/**
 * bench/ imports the relay's pure functions, whose types name two Web globals that the Workers types
 * declare but the Node tsconfig (lib es2024 + @types/node) does not. Node has both at run time.
 */
type BufferSource = NodeJS.ArrayBufferView | ArrayBuffer;
type CryptoKey = import("node:crypto").webcrypto.CryptoKey;
