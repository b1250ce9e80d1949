/** The relay `npm run dev` starts, which the other scripts talk to unless told otherwise. */
export const RELAY_PORT = 8787;
export const LOCAL_RELAY_URL = `http://127.0.0.1:${RELAY_PORT}`;

/** Why a script could not reach the relay at `url` (the network's own code), and what to do. */
export function unreachable(url: string, error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return `cannot reach the relay at ${url} (${cause?.code ?? cause?.message ?? (error as Error).message}). Is it running? Start it with: npm run dev`;
}
