/** What `tracelane` exits with; scripts can branch on these (documented in the README and `--help`). */
export const EXIT = {
  ok: 0,
  /** The research failed or was cancelled (`research --wait`, `status`). */
  failed: 1,
  /** Bad command line (unknown command or flag, bad value) or a request the api refused as invalid (400). */
  usage: 2,
  /** Nothing answers at TRACELANE_URL, or it did not answer in time. */
  unreachable: 3,
  /** No research or trace with that id (404). */
  notFound: 4,
  /** The api answered with an error of its own (5xx; 503 while its Redis is down): try again later. */
  apiError: 5,
  /** The api refused the API key: none sent (set TRACELANE_API_KEY), an unknown one (401), or a member key for an admin's read (403). */
  unauthorized: 6,
  /** Interrupted (Ctrl-C) while waiting. */
  interrupted: 130,
  /** The output pipe closed before the command finished (`… | head`), as SIGPIPE ends shell tools. */
  closedPipe: 141,
} as const;

/** An error that ends the command with `exitCode`, printed as one plain message (no stack). */
export class CliError extends Error {
  override readonly name: string = "CliError";
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  override readonly name = "UsageError";
  /** `usage`: the help of the command concerned, printed after the message. */
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message, EXIT.usage);
  }
}

export class ApiUnreachableError extends CliError {
  override readonly name = "ApiUnreachableError";
  constructor(message: string) {
    super(message, EXIT.unreachable);
  }
}

/** What to do about a 401: the CLI sends TRACELANE_API_KEY as `Authorization: Bearer <key>`. */
const KEY_HINT =
  "— the CLI sends TRACELANE_API_KEY as the API key: set it to a key from the api's API_KEYS / API_KEYS_FILE (export TRACELANE_API_KEY=<key>)";

/** The api answered with an error: its own `{ error: { code, message } }`, shown as it is. */
export class ApiError extends CliError {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    readonly apiMessage: string,
  ) {
    super(
      `the api answered ${status} ${code}: ${apiMessage}${status === 401 ? ` ${KEY_HINT}` : ""}`,
      status === 404
        ? EXIT.notFound
        : status === 401 || status === 403
          ? EXIT.unauthorized
          : status >= 400 && status < 500
            ? EXIT.usage
            : EXIT.apiError,
    );
  }
}
