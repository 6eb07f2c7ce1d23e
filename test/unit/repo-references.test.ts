import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = process.cwd();

/** The repository's files: tracked ones and new ones not yet added, not the ignored ones. */
function repositoryFiles(): string[] {
  return execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 })
    .split("\0")
    .filter((file) => file !== "" && existsSync(resolve(root, file)));
}

// A relative path that climbs to a folder named shared, one or more levels up.
const climbsToShared = new RegExp(String.raw`(?<![\w./-])(?:\.\./)+shared(?:/[^\s"'\x60)\]>,;*]*)?`, "g");

/**
 * Where a file points at a shared folder outside the repository (the notes this project started
 * from sat beside it): a path up to `shared` that, read from the file's own folder, leaves the
 * repository or names nothing in it. A relative import from infra/ of the repository's own
 * shared/config.ts passes.
 */
function outsideReferences(file: string, text: string): string[] {
  const found: string[] = [];
  for (const [index, line] of text.split("\n").entries()) {
    for (const match of line.matchAll(climbsToShared)) {
      const path = match[0].replace(/[.]+$/, "");
      const target = resolve(root, dirname(file), path);
      const inside = !relative(root, target).startsWith("..");
      if (!inside || !existsSync(target)) found.push(`${file}:${index + 1}: ${match[0]}`);
    }
  }
  return found;
}

describe("the repository stands on its own", () => {
  it("has no file that points at a shared folder outside it (the calibration and GPU figures are in docs/)", () => {
    const offenders = repositoryFiles().flatMap((file) => {
      const bytes = readFileSync(resolve(root, file));
      return bytes.includes(0) ? [] : outsideReferences(file, bytes.toString("utf8"));
    });
    expect(offenders, `files that point outside the repository:\n${offenders.join("\n")}`).toEqual([]);
  });

  it("catches a reference outside, and passes a relative import of the repository's own shared/", () => {
    const up = "..";
    expect(outsideReferences("README.md", `the measurement in \`${up}/shared/calibration\` (decode ...`)).toEqual([`README.md:1: ${up}/shared/calibration`]);
    expect(outsideReferences("shared/core/x.ts", `// from ${up}/shared/research/notes.md §1.1.`)).toHaveLength(1);
    expect(outsideReferences("test/unit/x.ts", `import { y } from "${up}/${up}/shared/core/prompt.ts";`)).toEqual([]);
    expect(outsideReferences("infra/x.cjs", `require("${up}/shared/config.ts");`)).toEqual([]);
  });
});
