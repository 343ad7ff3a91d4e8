import { spawn } from "node:child_process";

const tail = (text: string, lines = 15) => text.trim().split("\n").slice(-lines).join("\n");

/**
 * Run `redis-cli <args>` and resolve its stdout. Rejects naming the command when redis-cli is missing, exits
 * non-zero, or runs past timeoutMs (`--cluster create` polls until the nodes agree, which can be forever).
 * redis-cli prints its `[ERR]` lines to stdout, so both streams go into the error.
 */
export async function runRedisCli(args: readonly string[], timeoutMs: number): Promise<string> {
  const command = `redis-cli ${args.join(" ")}`;
  return new Promise((resolve, reject) => {
    const child = spawn("redis-cli", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`\`${command}\` did not finish within ${timeoutMs} ms; output so far:\n${tail(stdout + stderr)}`));
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`could not run redis-cli (install redis-tools / Redis >= 7.0 and put it on PATH): ${err.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(stdout);
      const output = [stderr && `stderr:\n${tail(stderr)}`, stdout && `stdout:\n${tail(stdout)}`].filter(Boolean).join("\n");
      reject(new Error(`\`${command}\` failed (${signal ?? `exit ${code}`}):\n${output || "(no output)"}`));
    });
  });
}
