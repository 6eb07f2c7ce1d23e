import { createHash, randomBytes } from "node:crypto";

/** API keys are stored only as this hash: a leaked table gives no usable key. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** A new API key: a recognisable prefix and 32 random bytes. */
export function generateApiKey(random: (bytes: number) => Buffer = randomBytes): string {
  return `bl_${random(32).toString("base64url")}`;
}

/** Who a key speaks for: its tenant, and whether it may also change how routes run (ops). */
export type Principal = { readonly tenant: string; readonly role: ApiKeyRole };
export type ApiKeyRole = "member" | "admin";

/** An item of the api-keys table. */
export type ApiKeyRecord = {
  readonly key_hash: string;
  readonly tenant: string;
  readonly name: string;
  readonly created_at: string;
  /** Absent means "member". */
  readonly role?: ApiKeyRole | undefined;
};
