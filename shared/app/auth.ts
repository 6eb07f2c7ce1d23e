import { hashApiKey, type Principal } from "../core/api-keys.ts";
import { UnauthorizedError } from "../core/errors.ts";
import type { ApiKeyStore } from "../ports.ts";

/** Who an API key speaks for; keys are looked up by hash only. */
export async function authenticate(apiKeys: ApiKeyStore, key: string | undefined): Promise<Principal> {
  if (!key) throw new UnauthorizedError("missing API key: send Authorization: Bearer <key>");
  const principal = await apiKeys.principalOf(hashApiKey(key));
  if (!principal) throw new UnauthorizedError("invalid API key");
  return principal;
}

/** The key from an `Authorization: Bearer <key>` header. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}
