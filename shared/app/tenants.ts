import { generateApiKey, hashApiKey, type ApiKeyRecord, type Principal } from "../core/api-keys.ts";
import { ConflictError, NotFoundError, ValidationError } from "../core/errors.ts";
import type { ApiKeyStore, Clock, TicketStore } from "../ports.ts";

export type TenantDeps = { readonly apiKeys: ApiKeyStore; readonly clock: Clock };

const TENANT_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

function checkTenantName(tenant: string): void {
  if (!TENANT_NAME.test(tenant)) {
    throw new ValidationError(`tenant: "${tenant}" must be lower-case letters, digits and '-', at most 63`, "tenant");
  }
}

/** A new tenant and its first API key; the key is shown once and stored only as its hash. */
export async function createTenant(deps: TenantDeps, tenant: string, role: Principal["role"] = "member"): Promise<{ readonly key: string; readonly record: ApiKeyRecord }> {
  checkTenantName(tenant);
  if ((await deps.apiKeys.listByTenant(tenant)).length > 0) throw new ConflictError(`tenant ${tenant} already exists; rotate its key instead`);
  return issueKey(deps, tenant, role);
}

/**
 * Replaces every key of a tenant with a new one: the new key works at once, the old ones stop
 * working when this returns. The tenant's jobs are untouched.
 */
export async function rotateTenantKey(deps: TenantDeps, tenant: string): Promise<{ readonly key: string; readonly record: ApiKeyRecord; readonly revoked: number }> {
  checkTenantName(tenant);
  const old = await deps.apiKeys.listByTenant(tenant);
  if (old.length === 0) throw new NotFoundError(`tenant ${tenant} not found; create it first`);
  const role = old.some((r) => r.role === "admin") ? "admin" : "member";
  const issued = await issueKey(deps, tenant, role);
  await Promise.all(old.map((r) => deps.apiKeys.delete(r.key_hash)));
  return { ...issued, revoked: old.length };
}

async function issueKey(deps: TenantDeps, tenant: string, role: Principal["role"]) {
  const key = generateApiKey();
  const record: ApiKeyRecord = { key_hash: hashApiKey(key), tenant, name: `${tenant} key`, created_at: deps.clock.now().toISOString(), role };
  await deps.apiKeys.put(record);
  return { key, record };
}

/** WebSocket tickets live this long: enough to open a socket right after asking for one. */
export const TICKET_TTL_MS = 60_000;

/** A one-time ticket to open a WebSocket with (`?ticket=`), so the API key stays out of URLs. */
export async function issueTicket(deps: { readonly tickets: TicketStore; readonly clock: Clock }, principal: Principal): Promise<{ readonly ticket: string; readonly expires_at: string }> {
  const ticket = `wst_${generateApiKey().slice(3)}`;
  const expiresAt = new Date(deps.clock.now().getTime() + TICKET_TTL_MS);
  await deps.tickets.put(hashApiKey(ticket), principal, expiresAt);
  return { ticket, expires_at: expiresAt.toISOString() };
}
