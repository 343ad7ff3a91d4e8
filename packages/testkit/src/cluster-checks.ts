/**
 * The conditions startRedisCluster and waitForFailover poll for. Each throws an error saying which node is
 * not there yet and why; waitFor keeps the last one for its timeout message.
 */
import type { Redis } from "ioredis";
import {
  CLUSTER_SLOTS,
  isUnhealthy,
  normalizeSlots,
  parseClusterNodes,
  parseInfo,
  topologyProblem,
  topologySignature,
  type ClusterNodeView,
  type SlotRange,
} from "./cluster-topology.js";
import { withProbe } from "./redis-probe.js";

export interface NodeReport {
  port: number;
  clusterInfo: Record<string, string>;
  views: ClusterNodeView[];
  replication: Record<string, string>;
}

// ioredis types CLUSTER's reply as unknown; INFO and NODES reply with text.
const clusterText = (r: Redis, sub: "INFO" | "NODES") => (sub === "INFO" ? r.cluster("INFO") : r.cluster("NODES")) as Promise<string>;

/** CLUSTER NODES as the node on `port` sees the cluster. */
export const readClusterNodes = (port: number): Promise<ClusterNodeView[]> =>
  withProbe(port, async (r) => parseClusterNodes(await clusterText(r, "NODES")));

export const readNodeReport = (port: number): Promise<NodeReport> =>
  withProbe(port, async (r) => ({
    port,
    clusterInfo: parseInfo(await clusterText(r, "INFO")),
    views: parseClusterNodes(await clusterText(r, "NODES")),
    replication: parseInfo(await r.info("replication")),
  }));

function requireClusterOk(report: NodeReport): void {
  const { cluster_state: state, cluster_slots_ok: slotsOk } = report.clusterInfo;
  if (state !== "ok") throw new Error(`node :${report.port} reports cluster_state:${state}`);
  if (slotsOk !== String(CLUSTER_SLOTS))
    throw new Error(`node :${report.port} reports cluster_slots_ok:${slotsOk}, expected ${CLUSTER_SLOTS}`);
}

/**
 * Every node: cluster_state ok, all slots ok, the expected masters and replicas, every replica's link to its
 * master up (so WAIT and failover have a synced replica), and the same topology as every other node.
 */
export function requireClusterReady(
  reports: readonly NodeReport[],
  expected: { masters: number; replicasPerMaster: number },
): ClusterNodeView[] {
  for (const report of reports) {
    requireClusterOk(report);
    const problem = topologyProblem(report.views, expected);
    if (problem) throw new Error(`node :${report.port} ${problem}`);
    const myself = report.views.find((v) => v.flags.includes("myself"));
    if (myself?.role === "replica" && report.replication.master_link_status !== "up") {
      throw new Error(`replica :${report.port} has master_link_status:${report.replication.master_link_status}`);
    }
  }
  requireAgreement(reports);
  return reports[0]!.views;
}

function requireAgreement(reports: readonly NodeReport[]): void {
  const first = reports[0]!;
  const expected = topologySignature(first.views);
  const other = reports.find((r) => topologySignature(r.views) !== expected);
  if (other) {
    throw new Error(
      `nodes disagree on the topology: :${first.port} sees\n${expected}\nwhile :${other.port} sees\n${topologySignature(other.views)}`,
    );
  }
}

/** What a master owned and who followed it, read just before it was killed. */
export interface FailoverBaseline {
  port: number;
  id: string;
  slots: SlotRange[];
  replicaIds: string[];
}

const slotsText = (ranges: readonly SlotRange[]) =>
  normalizeSlots(ranges)
    .map(([a, b]) => `${a}-${b}`)
    .join(",");

/**
 * Every surviving node: cluster_state ok, the dead master flagged `fail`, and the same one of its former
 * replicas a healthy master owning exactly the dead master's slots. Returns that replica's port.
 */
export function requireFailedOver(reports: readonly NodeReport[], dead: FailoverBaseline): number {
  const promotedPorts = new Set<number>();
  for (const report of reports) {
    requireClusterOk(report);
    const deadView = report.views.find((v) => v.id === dead.id);
    if (!deadView?.flags.includes("fail")) {
      throw new Error(`node :${report.port} does not flag dead master :${dead.port} as failed yet (flags ${deadView?.flags.join(",")})`);
    }
    const promoted = report.views.find((v) => dead.replicaIds.includes(v.id) && v.role === "master" && !isUnhealthy(v));
    if (!promoted) throw new Error(`node :${report.port} sees no replica of :${dead.port} promoted to master yet`);
    if (slotsText(promoted.slots) !== slotsText(dead.slots)) {
      throw new Error(
        `node :${report.port} sees promoted :${promoted.port} owning slots ${slotsText(promoted.slots)}, expected ${slotsText(dead.slots)}`,
      );
    }
    promotedPorts.add(promoted.port);
  }
  if (promotedPorts.size !== 1) throw new Error(`surviving nodes disagree on who replaced :${dead.port}: ${[...promotedPorts].join(", ")}`);
  requireAgreement(reports);
  return [...promotedPorts][0]!;
}
