/**
 * An error the api answers with `{ error: { code, message, details } }`.
 * `code` is stable and machine-readable; `message` says what to fix.
 */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const notFound = (what: string, id: string) =>
  new HttpError(404, "not_found", `No ${what} with id "${id}". Check the id returned when it was created.`);
