/** `pnpm --filter @tracelane/console build`: the console into packages/console/dist. */
import { buildConsole } from "./build.js";

const built = await buildConsole();
for (const f of built.files) console.log(`${f.path.padEnd(24)} ${(f.bytes / 1024).toFixed(1).padStart(7)} KiB`);
console.log(`built the console into ${built.outdir} in ${Math.round(built.ms)} ms`);
