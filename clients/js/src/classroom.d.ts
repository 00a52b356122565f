// Types of the client's API. Every frame's type is generated from the server's
// AsyncAPI document into protocol.d.ts (`npm run types`); this file is written by hand
// against it.
import type {
  CohortReply,
  Connected,
  Disconnect,
  HistoryReply,
  Joined,
  Pong,
  PresenceCount,
  PresenceDiff,
  PresenceJoin,
  PresenceLeave,
  PresenceReply,
  ProgressPush,
  Published,
  Refreshed,
} from "./protocol.js";

export type * from "./protocol.js";

/** The WebSocket subprotocol of the default (JSON) codec. */
export const SUBPROTOCOL: "classroom.v1.json";

/** How frames go on the wire: the subprotocol that selects the encoding, its encoder and decoder. */
export interface Codec {
  readonly subprotocol: string;
  /** Binary codecs get `ArrayBuffer` messages (the client sets `binaryType`). */
  readonly binary: boolean;
  encode(frame: object): string | Uint8Array;
  decode(data: unknown): unknown;
}

/** JSON (`classroom.v1.json`), the default. */
export const jsonCodec: Codec;

/** MessagePack (`classroom.v1.msgpack`) with a library you bring, e.g. `@msgpack/msgpack`. */
export function msgpackCodec(library: {
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}): Codec;

export const ErrorCode: {
  readonly BAD_REQUEST: "bad_request";
  readonly UNAUTHORIZED: "unauthorized";
  readonly FORBIDDEN: "forbidden";
  readonly RATE_LIMITED: "rate_limited";
  readonly UNAVAILABLE: "unavailable";
  readonly INTERNAL: "internal";
  readonly TIMEOUT: "timeout";
  readonly CONNECTION_LOST: "connection_lost";
  readonly CLOSED: "closed";
};
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A failed command or a refused connection: branch on `code`, never on `message`. */
export class ClassroomError extends Error {
  constructor(code: ErrorCodeValue | string, message: string, details?: Record<string, unknown>);
  readonly code: ErrorCodeValue | string;
  /** rate_limited, unavailable, timeout and connection_lost may succeed when tried again. */
  readonly retryable: boolean;
  readonly frame?: unknown;
}

/** A stored position in a session's stream. */
export interface Position {
  epoch: string;
  offset: number;
}

/** Any WebSocket class with the browser's interface (the global one, `ws`, React Native's). */
export interface WebSocketClass {
  new (url: string, protocols?: string | string[]): {
    readonly readyState: number;
    readonly protocol: string;
    onopen: ((event: unknown) => void) | null;
    onmessage: ((event: { data: unknown }) => void) | null;
    onclose: ((event: { code: number; reason: string }) => void) | null;
    onerror: ((event: unknown) => void) | null;
    binaryType?: string;
    send(data: string | Uint8Array): void;
    close(code?: number, reason?: string): void;
  };
}

export interface ClientOptions {
  /** The connection token the tenant's back end signed. */
  token: string;
  /** `ws(s)://host/ws`; required outside a page served by the classroom server. */
  url?: string;
  /** A fresh token before the current one expires (refresh in place) or after 4401. */
  getToken?: () => Promise<string>;
  /** ms to wait for a reply, and for a reconnect before a command gives up (10000). */
  requestTimeout?: number;
  /** ms, the scale of the first reconnect delay (500). */
  backoffInitial?: number;
  /** ms, the largest reconnect delay (10000). */
  backoffMax?: number;
  /** A WebSocket class: the global one by default. */
  WebSocket?: WebSocketClass;
  /** Protocol features to announce on `connect`: `presence.diff` gets one presence push per
   * window, `poll.tally.coalesced` one `poll.tally` per window (with `coalesced_from`). */
  features?: Array<"presence.diff" | "poll.tally.coalesced">;
  /** The encoding: `jsonCodec` (default) or `msgpackCodec({ encode, decode })`. */
  codec?: Codec;
}

export type ClientState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** An `event` push (its `event` is one of the *Push types' events in protocol.d.ts). */
export interface EventFrame {
  type: "event";
  session: string;
  epoch?: string;
  offset?: number;
  event: { kind: string; [field: string]: unknown };
}

export interface ClientEvents {
  status: { state: ClientState; attempt?: number; delay?: number; code?: number; reason?: string };
  connected: Connected;
  joined: {
    session: string;
    reply: Joined;
    rejoin: boolean;
    recovered: boolean;
    replayed: number;
    refreshed?: boolean;
  };
  refreshed: Refreshed;
  event: EventFrame;
  "presence.join": PresenceJoin;
  "presence.leave": PresenceLeave;
  "presence.diff": PresenceDiff;
  "presence.count": PresenceCount;
  progress: ProgressPush;
  disconnect: Disconnect;
  error: ClassroomError;
  closed: { code: number; reason: string; error?: ClassroomError };
}

export class ClassroomClient {
  constructor(options: ClientOptions);
  readonly state: ClientState;
  /** The user's profile from `connected`, or null before it. */
  readonly me: Connected["me"] | null;
  on<K extends keyof ClientEvents>(type: K, listener: (payload: ClientEvents[K]) => void): () => void;
  connect(): Promise<Connected["me"]>;
  join(session: string): Promise<Joined>;
  leave(session: string): Promise<unknown>;
  publish(
    session: string,
    event: { kind: string; [field: string]: unknown },
    options?: { clientMsgId?: string; attempts?: number },
  ): Promise<Published>;
  presence(session: string): Promise<PresenceReply>;
  history(session: string, options?: { since?: Position; limit?: number }): Promise<HistoryReply>;
  cohort(session: string): Promise<CohortReply>;
  video(session: string): Promise<unknown>;
  ping(): Promise<Pong>;
  request(type: string, fields?: Record<string, unknown>): Promise<unknown>;
  /** The newest stored position seen in a session, or null. */
  position(session: string): Position | null;
  /** Stop for good: pending commands reject with `closed`. */
  close(): void;
}

export function defaultUrl(location?: { protocol: string; host: string }): string;
export function randomId(): string;
