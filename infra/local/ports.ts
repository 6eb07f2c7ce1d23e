import { once } from "node:events";
import { createConnection, createServer, type AddressInfo } from "node:net";

/** A port free right now. Someone may take it before us: only for servers that need a number up front. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Fails with the port's name when something already listens there. */
export async function assertPortFree(port: number, what: string, host = "127.0.0.1"): Promise<void> {
  const server = createServer();
  server.listen(port, host);
  try {
    await once(server, "listening");
  } catch (error) {
    throw new Error(`${what} port ${port} on ${host} is not free (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  await new Promise((resolve) => server.close(resolve));
}

/** Whether something accepts connections on the port. */
export function isListening(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
