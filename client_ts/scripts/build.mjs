// Builds dist/ (ESM + .d.ts) with the repository's TypeScript compiler.
//
// The generated memori.v1 code travels inside the package: gen/ts is copied to src/gen first
// (git ignores that copy). protoc-gen-es wrote it for bundlers, with extensionless relative
// imports; Node's ESM loader needs `./common_pb.js`, so the copy gets the `.js` suffix that
// protoc-gen-es' own `import_extension=js` option would have written. Nothing else changes.
//
// Several checkouts' tools may build at once (./dev setup, tests): files are replaced one by
// one with a rename, and only when they changed, so a reader never sees a missing dist/.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = dirname(dirname(fileURLToPath(import.meta.url)));
const generated = join(pkg, "..", "gen", "ts");
const RELATIVE_IMPORT = /(from\s+["'])(\.{1,2}\/[^"']+?)(?<!\.js)(["'])/g;
const KEEP = new Set([".inputs-stamp"]); // written by ./dev next to the build

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

/** Makes `dir` hold exactly `wanted` (relative path -> content), touching only what differs. */
function mirror(dir, wanted) {
  for (const [path, content] of wanted) {
    const target = join(dir, path);
    if (existsSync(target) && readFileSync(target).equals(content)) continue;
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(`${target}.${process.pid}.tmp`, content);
    renameSync(`${target}.${process.pid}.tmp`, target);
  }
  if (!existsSync(dir)) return;
  for (const path of files(dir)) {
    const name = relative(dir, path);
    if (!wanted.has(name) && !KEEP.has(name) && !name.endsWith(".tmp")) rmSync(path);
  }
}

function syncGenerated() {
  const wanted = new Map();
  for (const source of files(generated)) {
    if (!source.endsWith(".ts")) continue;
    const text = readFileSync(source, "utf8").replace(RELATIVE_IMPORT, "$1$2.js$3");
    wanted.set(relative(generated, source), Buffer.from(text));
  }
  mirror(join(pkg, "src", "gen"), wanted);
}

function compile() {
  const out = mkdtempSync(join(pkg, ".build-"));
  try {
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
    const result = spawnSync(process.execPath, [tsc, "-p", join(pkg, "tsconfig.json"), "--outDir", out], {
      stdio: "inherit",
    });
    if (result.status !== 0) process.exit(result.status ?? 1);
    mirror(join(pkg, "dist"), new Map([...files(out)].map((path) => [relative(out, path), readFileSync(path)])));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

syncGenerated();
compile();
