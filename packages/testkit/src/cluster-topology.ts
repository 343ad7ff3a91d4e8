/** Pure readers of what a Redis Cluster node reports: CLUSTER NODES, INFO-style text, INFO commandstats. */

export const CLUSTER_SLOTS = 16384;

export type SlotRange = [from: number, to: number];

export interface ClusterNodeView {
  id: string;
  port: number;
  role: "master" | "replica";
  /** The id of the master a replica follows. */
  masterId: string | undefined;
  flags: string[];
  /** Slot ranges owned, in the order the node lists them. Importing/migrating markers are left out. */
  slots: SlotRange[];
}

/** Parse CLUSTER NODES: `<id> <ip:port@cport[,hostname]> <flags> <master|-> <ping> <pong> <epoch> <link> <slot>...`. */
export function parseClusterNodes(text: string): ClusterNodeView[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [id = "", addr = "", flagList = "", master = "-", , , , , ...slotFields] = line.split(" ");
      const flags = flagList.split(",");
      const port = Number(addr.split("@")[0]?.split(":").at(-1));
      const slots = slotFields
        .filter((s) => !s.startsWith("["))
        .map((s): SlotRange => {
          const [from, to = from] = s.split("-").map(Number) as [number, number?];
          return [from, to];
        });
      return {
        id,
        port,
        role: flags.includes("slave") ? "replica" : "master",
        masterId: master === "-" ? undefined : master,
        flags,
        slots,
      };
    });
}

/** A node another node is not sure about: failing, suspected, still handshaking or without an address. */
export function isUnhealthy(node: ClusterNodeView): boolean {
  return node.flags.some((f) => f === "fail" || f === "fail?" || f === "handshake" || f === "noaddr");
}

/** `key:value` lines of INFO / CLUSTER INFO; `# Section` headers and blank lines are skipped. */
export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(":");
    if (at <= 0 || line.startsWith("#")) continue;
    fields[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return fields;
}

/** INFO commandstats -> command name (as Redis spells it, e.g. `get`, `cluster|info`) -> calls. */
export function parseCommandStats(text: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const [key, value] of Object.entries(parseInfo(text))) {
    if (!key.startsWith("cmdstat_")) continue;
    const match = /(?:^|,)calls=(\d+)/.exec(value);
    if (match) calls[key.slice("cmdstat_".length)] = Number(match[1]);
  }
  return calls;
}

/** Ranges sorted and merged where they touch, so two views of the same ownership compare equal. */
export function normalizeSlots(ranges: readonly SlotRange[]): SlotRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const merged: SlotRange[] = [];
  for (const [from, to] of sorted) {
    const last = merged.at(-1);
    if (last && from <= last[1] + 1) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  return merged;
}

export const slotCount = (ranges: readonly SlotRange[]): number => ranges.reduce((n, [from, to]) => n + to - from + 1, 0);

/**
 * What is wrong with one node's view of a freshly created cluster, or undefined when it shows the expected
 * shape: `masters` healthy masters that together own every slot, each followed by `replicasPerMaster` replicas.
 */
export function topologyProblem(
  views: readonly ClusterNodeView[],
  expected: { masters: number; replicasPerMaster: number },
): string | undefined {
  const total = expected.masters * (1 + expected.replicasPerMaster);
  if (views.length !== total) return `knows ${views.length} nodes, expected ${total}`;
  const unhealthy = views.filter(isUnhealthy);
  if (unhealthy.length > 0) return `flags ${unhealthy.map((n) => `:${n.port} ${n.flags.join(",")}`).join("; ")}`;
  const masters = views.filter((n) => n.role === "master" && n.slots.length > 0);
  if (masters.length !== expected.masters) return `sees ${masters.length} masters owning slots, expected ${expected.masters}`;
  const owned = slotCount(normalizeSlots(masters.flatMap((m) => m.slots)));
  if (owned !== CLUSTER_SLOTS) return `sees ${owned} of ${CLUSTER_SLOTS} slots owned`;
  for (const master of masters) {
    const replicas = views.filter((n) => n.masterId === master.id).length;
    if (replicas !== expected.replicasPerMaster) {
      return `sees ${replicas} replicas of master :${master.port}, expected ${expected.replicasPerMaster}`;
    }
  }
  return undefined;
}

/** One line per node, sorted, so the views of different nodes can be compared for agreement. */
export function topologySignature(views: readonly ClusterNodeView[]): string {
  const portOf = new Map(views.map((n) => [n.id, n.port]));
  return views
    .map((n) => {
      const slots = normalizeSlots(n.slots)
        .map(([a, b]) => `${a}-${b}`)
        .join(",");
      return `${n.port} ${n.role} ${n.masterId === undefined ? "-" : portOf.get(n.masterId)} ${slots}`;
    })
    .sort()
    .join("\n");
}
