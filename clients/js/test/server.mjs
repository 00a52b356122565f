// A real `classroom serve` on a loopback port, on the machine's Redis under a key
// prefix of its own (so a restarted server still has the session's history), and
// HS256 tokens signed the way a tenant's back end signs them.
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../..", import.meta.url));
const BIN = process.env.CLASSROOM_BIN || `${REPO}.venv/bin/classroom`;
const REDIS_URL = process.env.CLASSROOM_TEST_REDIS_URL || "redis://127.0.0.1:6379/12";
const SECRET = "npm-client-test-secret-0123456789abcdef";
const TENANTS = { acme: { secrets: [SECRET], api_key: "acme-npm-client-key" } };

async function freePort() {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

const base64url = (value) => Buffer.from(value).toString("base64url");

/** A connection token for `sub` in `acme`, valid for `ttl` seconds. */
export function token(sub, role, { sessions = ["s1"], ttl = 600, name } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: "acme", sub, role, sessions, iat: now, exp: now + ttl };
  if (name) claims.name = name;
  const unsigned = `${base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${base64url(JSON.stringify(claims))}`;
  const signature = createHmac("sha256", SECRET).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

export class Server {
  constructor() {
    this.prefix = `npm-test-${randomBytes(6).toString("hex")}`;
    this.port = null;
    this.process = null;
    this.log = "";
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Start (again, on the same port after a stop). */
  async start() {
    this.port ??= await freePort();
    const env = {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CLASSROOM_"))),
      REDIS_URL,
      CLASSROOM_REDIS_PREFIX: this.prefix,
      CLASSROOM_TENANTS: JSON.stringify(TENANTS),
      CLASSROOM_SECRET: "npm-client-test-node-secret-0123456789",
      CLASSROOM_DRAIN_TIMEOUT: "1",
      CLASSROOM_HISTORY_TTL: "300", // the test's streams do not outlive it by a day
      CLASSROOM_REFRESH_BEFORE: "2",
    };
    this.process = spawn(BIN, ["serve", "--host", "127.0.0.1", "--port", String(this.port)], {
      env, stdio: ["ignore", "pipe", "pipe"],
    });
    this.process.stdout.on("data", (chunk) => { this.log += chunk; });
    this.process.stderr.on("data", (chunk) => { this.log += chunk; });
    for (let i = 0; i < 300; i++) {
      try {
        const answer = await fetch(`http://127.0.0.1:${this.port}/readyz`);
        if (answer.ok) return;
      } catch {
        // not listening yet
      }
      if (this.process.exitCode !== null) throw new Error(`server exited:\n${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`server did not become ready:\n${this.log}`);
  }

  /** SIGTERM: the server drains (1012 to every client) and exits. */
  async stop() {
    if (!this.process || this.process.exitCode !== null) return;
    const exited = once(this.process, "exit");
    this.process.kill("SIGTERM");
    await exited;
  }
}
