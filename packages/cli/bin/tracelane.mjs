#!/usr/bin/env node
// The `tracelane` command: the TypeScript sources run through tsx, like every service of the repo.
import { register } from "tsx/esm/api";

register();
const { run } = await import("../src/index.ts");
process.exitCode = await run(process.argv.slice(2), process.env);
