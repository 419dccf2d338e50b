// Builds dist/ (ESM + .d.ts) with the repository's TypeScript compiler.
//
// The generated memori.v1 code travels inside the package: gen/ts is copied to src/gen first
// (git ignores that copy). protoc-gen-es wrote it for bundlers, with extensionless relative
// imports; Node's ESM loader needs `./common_pb.js`, so the copy gets the `.js` suffix that
// protoc-gen-es' own `import_extension=js` option would have written. Nothing else changes.
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = dirname(dirname(fileURLToPath(import.meta.url)));
const generated = join(pkg, "..", "gen", "ts");
const copy = join(pkg, "src", "gen");
const RELATIVE_IMPORT = /(from\s+["'])(\.{1,2}\/[^"']+?)(?<!\.js)(["'])/g;

function* tsFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* tsFiles(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

export function syncGenerated() {
  rmSync(copy, { recursive: true, force: true });
  for (const source of tsFiles(generated)) {
    const target = join(copy, relative(generated, source));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, readFileSync(source, "utf8").replace(RELATIVE_IMPORT, "$1$2.js$3"));
  }
}

function compile() {
  rmSync(join(pkg, "dist"), { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const result = spawnSync(process.execPath, [tsc, "-p", join(pkg, "tsconfig.json")], {
    stdio: "inherit",
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

syncGenerated();
if (!process.argv.includes("--sync-only")) compile();
