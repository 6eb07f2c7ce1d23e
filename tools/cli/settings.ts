import { z } from "zod";
import { CliError, EXIT } from "./exit-codes.ts";

/** Where the CLI finds the stack and who it is there. */
export type Settings = { readonly apiUrl: string; readonly wsUrl: string; readonly apiKey: string };

const profileSchema = z.strictObject({
  api_url: z.url({ error: "must be a URL" }).optional(),
  ws_url: z.url({ error: "must be a URL" }).optional(),
  api_key: z.string().min(1, "must not be empty").optional(),
});
const fileSchema = z.strictObject({ profiles: z.record(z.string(), profileSchema) });

/** The profile file's place: BATCHLINE_CONFIG, else $XDG_CONFIG_HOME/batchline/config.json, else ~/.config/batchline/config.json. */
export function configPath(env: NodeJS.ProcessEnv, home: string): string {
  return env.BATCHLINE_CONFIG ?? `${env.XDG_CONFIG_HOME ?? `${home}/.config`}/batchline/config.json`;
}

/**
 * The settings from the environment, over the profile (`--profile`, BATCHLINE_PROFILE, or
 * `default`) of the profile file. The embedded stack's addresses are the defaults, so that after
 * `npm start` only the key is needed.
 */
export function resolveSettings(env: NodeJS.ProcessEnv, file: { readonly path: string; readonly text: string | undefined }, profileName?: string): Settings {
  const name = profileName ?? env.BATCHLINE_PROFILE ?? "default";
  const profile = file.text === undefined ? undefined : readProfile(file.path, file.text, name, profileName !== undefined || env.BATCHLINE_PROFILE !== undefined);
  const apiUrl = env.BATCHLINE_API_URL ?? profile?.api_url ?? `http://127.0.0.1:${env.BATCHLINE_HTTP_PORT ?? "3000"}`;
  const wsUrl = env.BATCHLINE_WS_URL ?? profile?.ws_url ?? `ws://127.0.0.1:${env.BATCHLINE_WS_PORT ?? "3001"}`;
  const apiKey = env.BATCHLINE_API_KEY ?? profile?.api_key;
  if (!apiKey) throw new CliError(`no API key: set BATCHLINE_API_KEY, or api_key in profile "${name}" of ${file.path} (npm start prints the development key)`, EXIT.usage);
  return { apiUrl: apiUrl.replace(/\/+$/, ""), wsUrl, apiKey };
}

function readProfile(path: string, text: string, name: string, named: boolean): z.infer<typeof profileSchema> | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CliError(`${path} is not JSON; it holds {"profiles": {"default": {"api_url", "ws_url", "api_key"}}}`, EXIT.usage);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const problem = parsed.error.issues[0];
    throw new CliError(`${path}: ${problem?.path.join(".") || "file"}: ${problem?.message ?? "is malformed"}`, EXIT.usage);
  }
  const profile = parsed.data.profiles[name];
  if (!profile && named) throw new CliError(`${path} has no profile "${name}"; it has: ${Object.keys(parsed.data.profiles).join(", ") || "none"}`, EXIT.usage);
  return profile;
}
