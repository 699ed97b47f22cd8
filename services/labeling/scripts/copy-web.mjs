#!/usr/bin/env node
// Copies the web UI's static files (HTML, CSS) beside its compiled scripts in dist/web.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
mkdirSync(join(pkg, "dist", "web"), { recursive: true });
for (const f of ["index.html", "admin.html", "style.css"]) copyFileSync(join(pkg, "src", "web", f), join(pkg, "dist", "web", f));
