// Starting `intercom serve` for the browser tests, shared by both scripts.
import { spawn } from "node:child_process";

/// Starts `bin serve --config configPath` on the ports its config asks for (0: any),
/// appending its stderr lines to `log`. Returns the process at once, and `ready`, which
/// resolves with both listeners' addresses once the stores have loaded too (the control
/// token is written after the listeners bind), or rejects after `timeoutMs` or on exit.
/// `env` adds to the server's environment.
export function spawnServer(bin, configPath, log, timeoutMs, env = {}) {
  const process_ = spawn(bin, ["serve", "--config", configPath], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, RUST_LOG: "info", ...env } });
  const ready = new Promise((ok, ko) => {
    const found = {};
    const timer = setTimeout(() => ko(new Error("the server did not start")), timeoutMs);
    let buf = "";
    process_.stderr.on("data", chunk => {
      buf += chunk;
      const lines = buf.split("\n");
      buf = lines.pop();
      for (const line of lines) {
        log.push(line);
        const m = line.match(/(webhook|control) listening on (\S+)/);
        if (m) found[m[1]] = m[2];
        if (line.includes("state loaded: serving")) found.loaded = true;
        if (found.webhook && found.control && found.loaded) { clearTimeout(timer); ok(found); }
      }
    });
    process_.on("exit", code => { if (!found.loaded) ko(new Error(`the server exited with ${code}`)); });
  });
  return { process: process_, ready };
}
