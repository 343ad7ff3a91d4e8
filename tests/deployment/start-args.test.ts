import net from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "@tracelane/testkit";
import { parseStartArgs } from "../../scripts/lib/start-options.js";
import { PortTakenError, resolvePorts } from "../../scripts/lib/start-ports.js";

const parse = (argv: string[], externalProvider = false) => parseStartArgs(argv, { externalProvider });

describe("pnpm start arguments", () => {
  it("runs one replica of every service, on ports 3000, 4010 and 4319, by default", () => {
    const opts = parse([]);
    expect(Object.values(opts.replicas)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(opts.ports).toEqual({ api: 3000, "llm-simulator": 4010, "trace-collector": 4319 });
    expect(opts.dist).toBe(false);
  });

  it("scales a service named by its stage, its short name or its full name, repeatably", () => {
    const opts = parse(["--scale", "factcheck=3", "--scale=analysis-worker=2", "--scale", "collector=2", "--scale", "synthesis=0"]);
    expect(opts.replicas).toMatchObject({
      "factcheck-worker": 3,
      "analysis-worker": 2,
      "trace-collector": 2,
      "synthesis-worker": 0,
      api: 1,
    });
  });

  it("leaves the simulator out when LLM_BASE_URL names another provider, unless asked for", () => {
    expect(parse([], true).replicas["llm-simulator"]).toBe(0);
    expect(parse(["--scale", "simulator=1"], true).replicas["llm-simulator"]).toBe(1);
  });

  it("rejects what it cannot run, naming the problem", () => {
    expect(() => parse(["--scale", "factcheck"])).toThrow(/--scale expects <service>=<number>/);
    expect(() => parse(["--scale", "translate=2"])).toThrow(/unknown service "translate"/);
    expect(() => parse(["--scale", "simulator=2"])).toThrow(/llm-simulator runs as a single process/);
    expect(() => parse(["--scale", "factcheck=99"])).toThrow(/at most 32/);
    expect(() => parse(["--port", "factcheck=8080"])).toThrow(/has no fixed port/);
    expect(() => parse(["--replicas", "2"])).toThrow(/Unknown option '--replicas'/);
  });

  it("takes ports per service, 0 meaning any free port, and remembers which were asked for", () => {
    const opts = parse(["--port", "api=3100", "--port", "simulator=0"]);
    expect(opts.ports).toEqual({ api: 3100, "llm-simulator": 0, "trace-collector": 4319 });
    expect(opts.explicitPorts).toEqual(["api", "llm-simulator"]);
    expect(parse([]).explicitPorts).toEqual([]);
  });
});

describe("pnpm start ports", () => {
  /** A port held by this test for the duration of `fn`. */
  async function whileTaken<T>(fn: (port: number) => Promise<T>): Promise<T> {
    const port = await freePort();
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(port, resolve));
    try {
      return await fn(port);
    } finally {
      holder.close();
    }
  }
  const started = () => true;

  it("lets a taken default port give way to a free one, saying so", async () => {
    const said: string[] = [];
    const out = await whileTaken((port) => resolvePorts({ api: port }, { explicit: [], started, log: (m) => said.push(m) }));
    expect(out).toEqual({});
    expect(said).toEqual([expect.stringMatching(/^port \d+ \(the default for api\) is taken; api gets a free one$/)]);
  });

  it("refuses a taken port that was asked for with --port, naming it", async () => {
    await whileTaken(async (port) => {
      const attempt = resolvePorts({ api: port }, { explicit: ["api"], started, log: () => undefined });
      await expect(attempt).rejects.toThrow(PortTakenError);
      await expect(attempt).rejects.toThrow(`--port api=${port}: port ${port} is already in use`);
    });
  });

  it("keeps a free port, and leaves 0 and services not started to the launcher", async () => {
    const port = await freePort();
    const out = await resolvePorts(
      { api: port, "llm-simulator": 0, "trace-collector": port },
      { explicit: ["api"], started: (name) => name !== "trace-collector", log: () => undefined },
    );
    expect(out).toEqual({ api: port });
  });
});
