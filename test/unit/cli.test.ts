import { describe, expect, it } from "vitest";
import { CliError, EXIT, exitCodeOfBatch, exitCodeOfJob } from "../../tools/cli/exit-codes.ts";
import { customIdsOf, mergeResults } from "../../tools/cli/resume.ts";
import { configPath, resolveSettings } from "../../tools/cli/settings.ts";

const profiles = (p: Record<string, unknown>) => JSON.stringify({ profiles: p });

describe("the CLI's settings", () => {
  it("take the environment over the profile file, and the embedded stack's addresses by default", () => {
    const file = { path: "/home/u/.config/batchline/config.json", text: profiles({ default: { api_url: "https://api.example.com/", api_key: "bl_file" }, prod: { api_url: "https://prod.example.com", ws_url: "wss://ws.example.com", api_key: "bl_prod" } }) };
    expect(resolveSettings({}, file)).toEqual({ apiUrl: "https://api.example.com", wsUrl: "ws://127.0.0.1:3001", apiKey: "bl_file" });
    expect(resolveSettings({ BATCHLINE_API_KEY: "bl_env" }, file, "prod")).toEqual({ apiUrl: "https://prod.example.com", wsUrl: "wss://ws.example.com", apiKey: "bl_env" });
    expect(resolveSettings({ BATCHLINE_PROFILE: "prod" }, file).apiKey).toBe("bl_prod");
    expect(resolveSettings({ BATCHLINE_API_KEY: "k" }, { path: "x", text: undefined })).toEqual({ apiUrl: "http://127.0.0.1:3000", wsUrl: "ws://127.0.0.1:3001", apiKey: "k" });
    expect(configPath({ XDG_CONFIG_HOME: "/xdg" }, "/home/u")).toBe("/xdg/batchline/config.json");
    expect(configPath({ BATCHLINE_CONFIG: "/etc/b.json", XDG_CONFIG_HOME: "/xdg" }, "/home/u")).toBe("/etc/b.json");
  });

  it("are a usage error, saying what is wrong, without a key, with a profile the file lacks, or a malformed file", () => {
    const usage = (run: () => unknown, message: RegExp) => {
      expect(run).toThrow(message);
      try {
        run();
      } catch (error) {
        expect(error).toBeInstanceOf(CliError);
        expect((error as CliError).exitCode).toBe(EXIT.usage);
      }
    };
    usage(() => resolveSettings({}, { path: "/c.json", text: undefined }), /no API key: set BATCHLINE_API_KEY, or api_key in profile "default" of \/c.json/);
    usage(() => resolveSettings({ BATCHLINE_API_KEY: "k" }, { path: "/c.json", text: profiles({ default: {} }) }, "prod"), /\/c.json has no profile "prod"; it has: default/);
    usage(() => resolveSettings({ BATCHLINE_API_KEY: "k" }, { path: "/c.json", text: "{" }), /\/c.json is not JSON/);
    usage(() => resolveSettings({ BATCHLINE_API_KEY: "k" }, { path: "/c.json", text: profiles({ default: { api_url: "nope" } }) }), /\/c.json: profiles.default.api_url: must be a URL/);
  });
});

describe("the CLI's exit statuses", () => {
  it("say how a batch or a job ended, and nothing while it runs", () => {
    expect(exitCodeOfBatch({ status: "completed", request_counts: { failed: 0 } })).toBe(EXIT.ok);
    expect(exitCodeOfBatch({ status: "completed", request_counts: { failed: 2 } })).toBe(EXIT.someFailed);
    expect(exitCodeOfBatch({ status: "cancelled" })).toBe(EXIT.cancelled);
    expect(exitCodeOfBatch({ status: "expired" })).toBe(EXIT.expired);
    expect(exitCodeOfBatch({ status: "failed" })).toBe(EXIT.failed);
    expect(exitCodeOfBatch({ status: "finalizing" })).toBeUndefined();
    expect(exitCodeOfJob("SUCCEEDED")).toBe(EXIT.ok);
    expect(exitCodeOfJob("FAILED")).toBe(EXIT.failed);
    expect(exitCodeOfJob("RUNNING")).toBeUndefined();
    expect(new Set(Object.values(EXIT)).size).toBe(Object.keys(EXIT).length);
  });
});

describe("the CLI's resumed results", () => {
  const line = (id: string) => ({ custom_id: id, line: JSON.stringify({ custom_id: id, response: { status_code: 200 } }) });

  it("append only the lines whose custom_id the file lacks, and drop a line an interruption cut", () => {
    const existing = `${line("a").line}\n${line("b").line}\n{"custom_id":"c","resp`;
    const merged = mergeResults(existing, [line("a"), line("b"), line("c"), line("d")]);
    expect(merged.kept).toBe(`${line("a").line}\n${line("b").line}\n`);
    expect(merged.appended).toEqual([line("c").line, line("d").line]);
    expect(mergeResults("", [line("a")])).toEqual({ kept: "", appended: [line("a").line] });
    expect(mergeResults(`${line("a").line}\n`, [line("a")]).appended).toEqual([]);
  });

  it("follow the input file's order", () => {
    expect(customIdsOf('{"custom_id":"x"}\n\n{"custom_id":"y"}\nnot json\n')).toEqual(["x", "y"]);
  });
});
