// dynalite ships no types; this covers the part the embedded stack uses.
declare module "dynalite" {
  import type { Server } from "node:http";

  type DynaliteOptions = {
    /** LevelDB folder; in memory when absent. */
    path?: string;
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
    maxItemSizeKb?: number;
  };

  function dynalite(options?: DynaliteOptions): Server;
  export default dynalite;
}
