import { hashApiKey } from "../core/api-keys.ts";
import { UnauthorizedError } from "../core/errors.ts";
import type { ApiKeyStore } from "../ports.ts";

/** The tenant an API key belongs to; keys are looked up by hash only. */
export async function authenticate(apiKeys: ApiKeyStore, key: string | undefined): Promise<string> {
  if (!key) throw new UnauthorizedError("missing API key: send Authorization: Bearer <key>");
  const tenant = await apiKeys.tenantOf(hashApiKey(key));
  if (!tenant) throw new UnauthorizedError("invalid API key");
  return tenant;
}

/** The key from an `Authorization: Bearer <key>` header. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}
