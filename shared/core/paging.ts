import { ValidationError } from "./errors.ts";

export type Page<T> = { readonly items: readonly T[]; readonly cursor?: string | undefined };
export type PageRequest = { readonly limit: number; readonly cursor?: string | undefined };

/** `?limit=&cursor=` as a page request; limit defaults to `defaultLimit` and is capped at 1000. */
export function pageRequest(query: Readonly<Record<string, string | undefined>> | undefined, defaultLimit: number): PageRequest {
  const rawLimit = query?.limit;
  let limit = defaultLimit;
  if (rawLimit !== undefined) {
    limit = Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ValidationError("limit: must be an integer between 1 and 1000", "limit");
  }
  return { limit, cursor: query?.cursor || undefined };
}
