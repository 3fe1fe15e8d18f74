// Copies the licence of every package esbuild put in the bundle into licenses/,
// with an index of names, versions and licences.
import fs from "node:fs";
import path from "node:path";

const meta = JSON.parse(fs.readFileSync("meta.json", "utf8"));
const packages = new Set();
for (const input of Object.keys(meta.inputs)) {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (match) packages.add(match[1]);
}
fs.rmSync("licenses", { recursive: true, force: true });
fs.mkdirSync("licenses");
const index = ["# Packages in codemirror.min.js", "", "| package | version | licence |", "|---|---|---|"];
for (const name of [...packages].sort()) {
  const dir = path.join("node_modules", name);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const file = fs.readdirSync(dir).find((entry) => /^licen[cs]e(\.md|\.txt)?$/i.test(entry));
  if (!file) throw new Error(`${name} ships no licence file`);
  fs.copyFileSync(path.join(dir, file), path.join("licenses", `${name.replace("/", "__")}.LICENSE`));
  index.push(`| ${name} | ${manifest.version} | ${manifest.license} |`);
}
fs.writeFileSync(path.join("licenses", "README.md"), index.join("\n") + "\n");
