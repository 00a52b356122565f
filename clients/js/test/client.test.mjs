// The npm package against a real server on loopback, under Node with the `ws`
// package as its WebSocket: what a back-end or React Native team would see.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { decode, encode } from "@msgpack/msgpack";
import WebSocket from "ws";

import {
  ClassroomClient, ClassroomError, ErrorCode, defaultUrl, msgpackCodec,
} from "../src/classroom.js";
import { Server, token } from "./server.mjs";

const server = new Server();
before(() => server.start());
after(() => server.stop());

const clients = [];
function client(sub, role, options = {}) {
  const made = new ClassroomClient({
    url: server.url, token: token(sub, role, options.claims), WebSocket,
    backoffInitial: 100, backoffMax: 500, ...options,
  });
  clients.push(made);
  return made;
}
after(() => clients.forEach((c) => c.close()));

/** Resolve with the first payload of `type` that `match` accepts. */
function next(c, type, match = () => true, timeout = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${type} in ${timeout} ms`)); }, timeout);
    const off = c.on(type, (payload) => {
      if (!match(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

test("connects, joins and hears another user's chat", async () => {
  const tessa = client("t1", "trainer", { claims: { name: "Tessa Trainer" } });
  const sam = client("u1", "student", { claims: { name: "Sam Student" } });
  const me = await tessa.connect();
  assert.equal(me.role, "trainer");
  await sam.connect();
  const joined = await tessa.join("s1");
  assert.equal(joined.type, "joined");
  assert.equal(joined.session, "s1");
  await sam.join("s1");
  const heard = next(sam, "event", (f) => f.event.kind === "chat");
  const published = await tessa.publish("s1", { kind: "chat", text: "Welkom" });
  assert.equal(typeof published.offset, "number");
  const frame = await heard;
  assert.equal(frame.event.text, "Welkom");
  assert.equal(frame.offset, published.offset);
  assert.equal(frame.event.by.display_name, "Tessa");
  assert.deepEqual(sam.position("s1"), { epoch: frame.epoch, offset: frame.offset });
});

test("a MessagePack client and a JSON client hear each other", async () => {
  const tessa = client("t3", "trainer", { codec: msgpackCodec({ encode, decode }) });
  const sam = client("u6", "student", { claims: { name: "Sam Student" } });
  await tessa.connect();
  await sam.connect();
  await tessa.join("s1");
  await sam.join("s1");
  const heardBySam = next(sam, "event", (f) => f.event.text === "in MessagePack");
  const heardByTessa = next(tessa, "event", (f) => f.event.text === "in JSON");
  const published = await tessa.publish("s1", { kind: "chat", text: "in MessagePack" });
  assert.equal((await heardBySam).offset, published.offset);
  await sam.publish("s1", { kind: "chat", text: "in JSON" });
  const frame = await heardByTessa;
  assert.equal(frame.event.by.display_name, "Sam");
  assert.equal(typeof frame.event.at, "number");
  assert.throws(() => msgpackCodec({}), TypeError);
});

test("a refused command rejects with the server's code, and the client carries on", async () => {
  const sam = client("u2", "student");
  await sam.connect();
  await sam.join("s1");
  await assert.rejects(
    sam.publish("s1", { kind: "screen.navigate", screen: "intro" }),
    (err) => err instanceof ClassroomError && err.code === ErrorCode.FORBIDDEN && !err.retryable,
  );
  await assert.rejects(
    sam.publish("s1", { kind: "chat", text: "" }),
    (err) => err.code === ErrorCode.BAD_REQUEST,
  );
  const pong = await sam.ping();
  assert.equal(pong.type, "pong");
  assert.throws(() => defaultUrl(undefined), (err) => err.code === ErrorCode.BAD_REQUEST);
});

test("a refused token rejects connect with unauthorized and stops the client", async () => {
  const forged = new ClassroomClient({ url: server.url, token: `${token("u3", "student")}x`, WebSocket });
  clients.push(forged);
  const closed = next(forged, "closed");
  await assert.rejects(forged.connect(), (err) => err.code === ErrorCode.UNAUTHORIZED);
  assert.equal((await closed).code, 4401);
  assert.equal(forged.state, "closed");
});

test("after a server restart it reconnects, rejoins with since and gets exactly what it missed", async () => {
  const tessa = client("t2", "trainer");
  // Noor waits longer before reconnecting than the trainer, so the trainer is back
  // and publishing while Noor is still away.
  const noor = client("u4", "student", { backoffInitial: 3000, backoffMax: 3000 });
  await tessa.connect();
  await noor.connect();
  await tessa.join("s1");
  await noor.join("s1");
  const seen = [];
  noor.on("event", (f) => { if (typeof f.offset === "number") seen.push(f.offset); });
  // Listening before the publish: the event may reach Noor before the reply reaches Tessa.
  const heardBefore = next(noor, "event", (f) => f.event.text === "before");
  await tessa.publish("s1", { kind: "chat", text: "before" });
  await heardBefore;
  const before = noor.position("s1");

  const reconnecting = next(noor, "status", (s) => s.state === "reconnecting");
  const rejoining = next(noor, "joined", (j) => j.rejoin, 20000);
  await server.stop(); // drains: every client gets 1012 and reconnects
  await reconnecting;
  await server.start();
  // The trainer's client comes back too; what it publishes now, Noor missed.
  await tessa.publish("s1", { kind: "chat", text: "missed 1" });
  await tessa.publish("s1", { kind: "chat", text: "missed 2" });
  const rejoined = await rejoining;
  assert.equal(rejoined.recovered, true);
  assert.equal(rejoined.replayed, 2);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const after = noor.position("s1");
  assert.equal(after.epoch, before.epoch);
  const missed = seen.filter((offset) => offset > before.offset);
  assert.deepEqual(missed, [before.offset + 1, before.offset + 2]); // each once, in order
  assert.equal(new Set(seen).size, seen.length);
});

test("getToken refreshes the token in place before it expires", async () => {
  let fetched = 0;
  const sam = client("u5", "student", {
    claims: { ttl: 4 },
    getToken: async () => { fetched += 1; return token("u5", "student", { ttl: 600 }); },
  });
  await sam.connect();
  await sam.join("s1");
  const refreshed = await next(sam, "refreshed", () => true, 8000);
  assert.ok(fetched >= 1);
  assert.ok(refreshed.expires_at > Date.now() / 1000 + 60);
  await new Promise((resolve) => setTimeout(resolve, 3000)); // past the first token's exp
  assert.equal(sam.state, "open");
  const published = await sam.publish("s1", { kind: "chat", text: "still here" });
  assert.equal(published.type, "published");
});
