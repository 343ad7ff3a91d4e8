import { describe, expect, it } from "vitest";
import { normalizeSlots, parseClusterNodes, parseCommandStats, topologyProblem } from "../src/cluster-topology.js";

// CLUSTER NODES of a 3+3 cluster, as Redis 7 prints it (one line per node, slots last).
const NODES = `
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
a2 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922
a3 127.0.0.1:7003@17003 master - 0 1 3 connected 10923-16383 [77->-a1]
b1 127.0.0.1:7004@17004,host-b1 slave a1 0 1 1 connected
b2 127.0.0.1:7005@17005 slave a2 0 1 2 connected
b3 127.0.0.1:7006@17006 slave a3 0 1 3 connected
`;

describe("parseClusterNodes", () => {
  it("reads port, role, master and slot ranges, leaving out migration markers", () => {
    const views = parseClusterNodes(NODES);
    expect(views[2]).toEqual({ id: "a3", port: 7003, role: "master", masterId: undefined, flags: ["master"], slots: [[10923, 16383]] });
    expect(views[3]).toMatchObject({ id: "b1", port: 7004, role: "replica", masterId: "a1", slots: [] });
  });

  it("reads a single slot as a one-slot range", () => {
    expect(parseClusterNodes("a 127.0.0.1:1@2 master - 0 0 1 connected 5 7-9")[0]!.slots).toEqual([
      [5, 5],
      [7, 9],
    ]);
  });
});

describe("topologyProblem", () => {
  const expected = { masters: 3, replicasPerMaster: 1 };

  it("accepts 3 masters owning every slot, each with one replica", () => {
    expect(topologyProblem(parseClusterNodes(NODES), expected)).toBeUndefined();
  });

  it("names a node flagged as failing", () => {
    const views = parseClusterNodes(NODES.replace("master - 0 1 2", "master,fail? - 0 1 2"));
    expect(topologyProblem(views, expected)).toBe("flags :7002 master,fail?");
  });

  it("names a master whose replica has not attached yet", () => {
    const views = parseClusterNodes(NODES.replace("slave a3", "master -"));
    expect(topologyProblem(views, expected)).toBe("sees 0 replicas of master :7003, expected 1");
  });
});

describe("normalizeSlots", () => {
  it("sorts ranges and merges the ones that touch", () => {
    expect(
      normalizeSlots([
        [10, 20],
        [0, 9],
        [30, 40],
      ]),
    ).toEqual([
      [0, 20],
      [30, 40],
    ]);
  });
});

describe("parseCommandStats", () => {
  it("maps each command, subcommands included, to its call count", () => {
    const text =
      "# Commandstats\r\ncmdstat_get:calls=3,usec=9,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\ncmdstat_cluster|info:calls=12,usec=1\r\n";
    expect(parseCommandStats(text)).toEqual({ get: 3, "cluster|info": 12 });
  });
});
