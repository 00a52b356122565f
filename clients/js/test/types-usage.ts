// Compiled (never run) by `npm test` with `tsc --noEmit`: the hand-written API types
// in src/classroom.d.ts must still fit the generated frame types in src/protocol.d.ts,
// and a TypeScript app written against them must type-check, with no DOM or Node
// types around (as in React Native).
import {
  ClassroomClient,
  ClassroomError,
  ErrorCode,
  jsonCodec,
  msgpackCodec,
  type Codec,
  type Joined,
  type Position,
  type WebSocketClass,
} from "@poweredbymentor/classroom-client";
import type { Connected, StateSnapshot } from "@poweredbymentor/classroom-client/protocol";

declare const WebSocket: WebSocketClass; // the `ws` package's class, or React Native's
declare const msgpack: { encode(value: unknown): Uint8Array; decode(bytes: Uint8Array): unknown };
declare function log(...values: unknown[]): void;

const codec: Codec = Math.random() > 0.5 ? jsonCodec : msgpackCodec(msgpack);
const client = new ClassroomClient({
  url: "ws://127.0.0.1:8000/ws",
  token: "a.b.c",
  getToken: async () => "d.e.f",
  WebSocket,
  features: ["presence.diff"],
  codec,
});

const off: () => void = client.on("joined", ({ reply, rejoin, recovered, replayed }) => {
  const state: StateSnapshot = reply.state;
  log(state, rejoin, recovered, replayed.toFixed());
});
off();
client.on("event", (frame) => log(frame.event.kind, frame.offset));
client.on("closed", ({ code, error }) => log(code, error?.code));

export async function lesson(): Promise<void> {
  const me: Connected["me"] = await client.connect();
  const joined: Joined = await client.join("s1");
  const published = await client.publish("s1", { kind: "chat", text: `hi ${me.sub}` });
  const where: Position | null = client.position("s1");
  log(joined.epoch, published.offset, where?.offset);
  try {
    await client.publish("s1", { kind: "screen.navigate", screen: "intro" });
  } catch (err) {
    if (err instanceof ClassroomError && err.code === ErrorCode.FORBIDDEN && !err.retryable) return;
    throw err;
  }
}
