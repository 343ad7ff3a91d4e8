import { watch, type FSWatcher } from "node:fs";
import path from "node:path";
import type { ServiceContext } from "@tracelane/runtime";
import { loadPriceTable, type CallCost, type ModelPrice, type PriceSource, type PriceTable, type TokenUsage } from "./price-table.js";

export interface PriceBookLogger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What a reload did. */
export type PriceReload =
  | { outcome: "loaded"; version: string; previousVersion: string }
  | { outcome: "unchanged"; version: string }
  /** The file could not be read or parsed: `reason` names the file and the field; `version` is the one kept. */
  | { outcome: "refused"; version: string; reason: string };

export interface PriceBookOptions {
  /** The price file (TRACELANE_PRICE_TABLE); undefined: the built-in table, which never changes. */
  path?: string | undefined;
  logger: PriceBookLogger;
  /** Reload when the file changes (a watch of its directory, so a file replaced by rename is seen too). Default true. */
  watch?: boolean;
  /** How long changes must settle before the file is read (an editor or `cp` writes in several steps). Default 100 ms. */
  settleMs?: number;
}

/**
 * The price table a service prices with, reloadable without a restart: `reload()` (SIGHUP through
 * openPriceBook) and a watch of the file read it again; a file that cannot be read or parsed is refused
 * with the reason logged, and the table in force stays. Prices like the PriceTable in force at each call.
 */
export class PriceBook implements PriceSource {
  private table: PriceTable;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastRefusal: string | undefined;
  private readonly file: string;

  /** Loads the table (a bad file at boot throws, naming the file and field) and starts watching it. */
  constructor(private readonly opts: PriceBookOptions) {
    this.file = opts.path ?? "built-in";
    this.table = loadPriceTable(opts.path);
    opts.logger.info(
      { priceTable: this.file, priceVersion: this.table.version, models: this.table.entries.length },
      `price table ${this.file}: version ${this.table.version} in force`,
    );
    if (opts.path && (opts.watch ?? true)) this.watch(opts.path);
  }

  /** The table in force. */
  get current(): PriceTable {
    return this.table;
  }

  get version(): string {
    return this.table.version;
  }

  get entries() {
    return this.table.entries;
  }

  lookup(model: string, atMs?: number): ModelPrice | undefined {
    return this.table.lookup(model, atMs);
  }

  cost(model: string, usage: TokenUsage, atMs?: number): CallCost {
    return this.table.cost(model, usage, atMs);
  }

  /** Read the file again: a good one comes into force, a bad one is refused (logged with its reason) and the old one kept. */
  reload(trigger = "reload"): PriceReload {
    if (!this.opts.path) {
      this.opts.logger.info({ priceTable: this.file, trigger }, "price table: the built-in table has nothing to reload");
      return { outcome: "unchanged", version: this.table.version };
    }
    let next: PriceTable;
    try {
      next = loadPriceTable(this.opts.path);
    } catch (err) {
      const reason = (err as Error).message;
      // A watch sees every write; one refusal per bad content is enough (SIGHUP always answers).
      if (trigger !== "watch" || reason !== this.lastRefusal) {
        this.opts.logger.error(
          { priceTable: this.file, priceVersion: this.table.version, reason, trigger },
          `price table ${this.file} refused, version ${this.table.version} stays in force: ${reason}`,
        );
      }
      this.lastRefusal = reason;
      return { outcome: "refused", version: this.table.version, reason };
    }
    this.lastRefusal = undefined;
    const previousVersion = this.table.version;
    if (next.version === previousVersion) {
      if (trigger !== "watch") {
        this.opts.logger.info({ priceTable: this.file, priceVersion: previousVersion, trigger }, `price table ${this.file} unchanged`);
      }
      return { outcome: "unchanged", version: previousVersion };
    }
    this.table = next;
    this.opts.logger.info(
      { priceTable: this.file, priceVersion: next.version, previousVersion, models: next.entries.length, trigger },
      `price table ${this.file} reloaded: version ${next.version} in force (was ${previousVersion})`,
    );
    return { outcome: "loaded", version: next.version, previousVersion };
  }

  /** Stop watching the file (idempotent). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }

  private watch(file: string): void {
    const dir = path.dirname(path.resolve(file));
    const base = path.basename(file);
    try {
      this.watcher = watch(dir, { persistent: false }, (_event, name) => {
        // The file itself, or a Kubernetes ConfigMap's `..data` symlink swap; no name: the platform did not say.
        if (name !== null && name !== base && !name.startsWith("..")) return;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.reload("watch"), this.opts.settleMs ?? 100);
        this.timer.unref();
      });
    } catch (err) {
      this.watcher = undefined;
      this.opts.logger.error(
        { priceTable: this.file, reason: (err as Error).message },
        `price table ${this.file}: cannot watch ${dir} (${(err as Error).message}); reload with SIGHUP`,
      );
      return;
    }
    this.watcher.on("error", (err) => {
      this.opts.logger.error(
        { priceTable: this.file, reason: err.message },
        `price table ${this.file}: the watch failed (${err.message}); reload with SIGHUP`,
      );
      this.close();
    });
  }
}

/**
 * A service's price book: TRACELANE_PRICE_TABLE (or the built-in table) loaded, watched, reloaded on SIGHUP
 * (`ctx.onReload`), and its watch closed at shutdown. Every service that prices (api, collector, stage workers)
 * opens its table here.
 */
export function openPriceBook(
  ctx: Pick<ServiceContext<unknown, PriceBookLogger>, "logger" | "shutdown" | "onReload">,
  file: string | undefined,
  opts: Pick<PriceBookOptions, "watch" | "settleMs"> = {},
): PriceBook {
  const book = new PriceBook({ path: file, logger: ctx.logger, ...opts });
  ctx.onReload(() => book.reload("SIGHUP"));
  ctx.shutdown.add("stop watching the price table", () => book.close());
  return book;
}
