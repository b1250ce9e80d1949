/** Every queue message is sent as JSON text (contentType "text"). */
export function encodeMessage(body: unknown): string {
  return JSON.stringify(body);
}

/**
 * A queue message body as read: JSON text parsed; an object (an older relay's contentType "json") as is;
 * text that is not JSON stays text (and is then unreadable).
 */
export function decodeMessage(body: unknown): unknown {
  if (typeof body !== "string") return body;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}
