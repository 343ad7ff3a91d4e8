import { parseCommand } from "./args.js";
import { ApiClient, parseBaseUrl } from "./client.js";
import { CliError, EXIT, UsageError } from "./errors.js";
import { listResearches, listTraces, showCosts, showTrace, showWhatIf } from "./reads.js";
import { showStatus, submitResearch, type Output } from "./research.js";

export { EXIT } from "./errors.js";
export { table, usd } from "./format.js";

const stdio: Output = {
  out: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
};

/** `tracelane … | head` closes the pipe early: stop quietly with 141, as SIGPIPE ends other command-line tools. */
let pipesWatched = false;
function exitOnClosedPipe(): void {
  if (pipesWatched) return;
  pipesWatched = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(EXIT.closedPipe);
      throw err;
    });
  }
}

/** Run one `tracelane` command line; resolves to its exit code (see EXIT). */
export async function run(argv: string[], env: Record<string, string | undefined> = process.env, io: Output = stdio): Promise<number> {
  if (io === stdio) exitOnClosedPipe();
  try {
    const cmd = parseCommand(argv, env);
    if (cmd.name === "help") {
      io.out(cmd.text);
      return EXIT.ok;
    }
    const api = new ApiClient(
      parseBaseUrl(cmd.url, cmd.url === env.TRACELANE_URL ? "TRACELANE_URL" : "--url"),
      env.TRACELANE_API_KEY?.trim() || undefined,
    );
    switch (cmd.name) {
      case "research":
        return await submitResearch(api, cmd, io);
      case "status":
        return await showStatus(api, cmd.id, cmd.json, io);
      case "researches":
        return await listResearches(api, cmd.params, cmd.json, io);
      case "trace":
        return await showTrace(api, cmd.traceId, cmd.json, io);
      case "traces":
        return await listTraces(api, cmd.params, cmd.json, io);
      case "costs":
        return await showCosts(api, cmd.params, cmd.json, io);
      case "what-if":
        return await showWhatIf(api, cmd.traceId, cmd.params, cmd.json, io);
    }
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`tracelane: ${err.message}`);
      if (err instanceof UsageError && err.usage) io.err(`\n${err.usage}`);
      return err.exitCode;
    }
    // A bug of the CLI itself: say so with the stack, exit 1.
    io.err(`tracelane: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return EXIT.failed;
  }
}
