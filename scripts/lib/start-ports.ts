import net from "node:net";
import type { ServiceName } from "@tracelane/launcher";

/** A port asked for with --port is taken: the start stops, naming it. */
export class PortTakenError extends Error {
  override readonly name = "PortTakenError";
  constructor(
    readonly service: ServiceName,
    readonly port: number,
  ) {
    super(`--port ${service}=${port}: port ${port} is already in use; stop what uses it, pick another port, or 0 for any free one`);
  }
}

/** Free right now on every interface (how the services bind)? */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, () => srv.close(() => resolve(true)));
  });
}

/**
 * The port each HTTP service gets. A default port that is taken gives way (the launcher picks a
 * free one, and `log` says so); a port asked for explicitly that is taken throws PortTakenError.
 * 0 and services not started are left to the launcher.
 */
export async function resolvePorts(
  requested: Partial<Record<ServiceName, number>>,
  opts: { explicit: readonly ServiceName[]; started: (name: ServiceName) => boolean; log: (msg: string) => void },
): Promise<Partial<Record<ServiceName, number>>> {
  const out: Partial<Record<ServiceName, number>> = {};
  for (const [name, port] of Object.entries(requested) as Array<[ServiceName, number]>) {
    if (port === 0 || !opts.started(name)) continue;
    if (await portIsFree(port)) out[name] = port;
    else if (opts.explicit.includes(name)) throw new PortTakenError(name, port);
    else opts.log(`port ${port} (the default for ${name}) is taken; ${name} gets a free one`);
  }
  return out;
}
