/**
 * A start that cannot succeed until the operator changes something (a port in use, a Redis that
 * does not answer). Its message is the whole story, printed as the one boot-failure line.
 */
export class BootError extends Error {
  override readonly name = "BootError";
  constructor(
    message: string,
    /** The variable to change, when there is one. */
    readonly variable?: string,
  ) {
    super(message);
  }
}
