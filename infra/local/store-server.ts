// One store of the embedded stack (fauxqs or dynalite) in a process of its own
// (infra/local/store-process.ts starts it), so that it can die for real: SIGKILL leaves on disk
// exactly what the store had written, and a new process on the same port and folder takes over.
import { startLocalDynamoDb } from "./dynamodb.ts";
import { startLocalSqs } from "./sqs.ts";

export type StoreKind = "sqs" | "dynamodb";

export type StoreServerStart = { readonly kind: StoreKind; readonly port: number; readonly host: string; readonly dataDir: string };

export type StoreServerMessage = { readonly kind: "ready"; readonly port: number } | { readonly kind: "failed"; readonly error: string };

/** From the parent: end the long polls now (LocalSqs.wakeReceivers). */
export type StoreServerCommand = { readonly kind: "wake-receivers" };

const send = (message: StoreServerMessage) => process.send?.(message);

async function serve(start: StoreServerStart) {
  if (start.kind === "sqs") return startLocalSqs(start);
  const dynamodb = await startLocalDynamoDb(start);
  return { ...dynamodb, wakeReceivers: () => undefined };
}

const start = JSON.parse(process.argv[2] ?? "") as StoreServerStart;
try {
  const server = await serve(start);
  process.on("message", (command: StoreServerCommand) => {
    if (command.kind === "wake-receivers") server.wakeReceivers();
  });
  // A clean stop closes the LevelDB or SQLite file; the parent's death stops us too.
  const stop = () => void server.close().finally(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("disconnect", stop);
  send({ kind: "ready", port: server.port });
} catch (error) {
  send({ kind: "failed", error: String(error) });
  process.exitCode = 1;
  process.disconnect?.();
}
