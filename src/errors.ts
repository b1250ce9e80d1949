import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * Every error the relay answers with: a stable machine code, an HTTP status and a sentence a person can
 * act on. Error bodies are `{"error": code, "message": sentence, ...details}` and never hold secrets.
 */
export class RelayError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    status: ContentfulStatusCode,
    code: string,
    message: string,
    details: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "RelayError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.headers = headers;
  }

  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.details };
  }
}

export function errorResponse(error: RelayError): Response {
  return Response.json(error.toJSON(), { status: error.status, headers: error.headers });
}

/** A short, secret-free description of an unexpected failure, for logs. */
export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 500);
  return String(error).slice(0, 500);
}
