/**
 * classroom.js — a dependency-free client of the classroom wire protocol v1.
 *
 * One file, no build step, no dependencies, no DOM: the npm package
 * `@poweredbymentor/classroom-client` (clients/js) for browsers, React Native and
 * Node, and `/static/classroom.js` for the server's own pages (an ES2020 module).
 * Outside a page pass `url`, and in Node (before 22) a `WebSocket` class such as
 * the `ws` package's. It speaks JSON (`classroom.v1.json`) by default, because
 * every host has it built in; pass `codec: msgpackCodec(lib)` to speak MessagePack
 * (`classroom.v1.msgpack`: smaller frames, less parsing on a phone) with a
 * MessagePack library you bring, so the package itself stays dependency-free. Types:
 * `classroom.d.ts`, and every frame in `protocol.d.ts` (generated from the
 * server's AsyncAPI document).
 *
 * What it does for you, and why:
 *
 * - **Commands as promises.** Every command gets an integer `id`; the reply with
 *   that id resolves the promise, an `error` reply rejects it with a
 *   {@link ClassroomError} whose `code` is the server's code (`forbidden`,
 *   `unavailable`, ...). Branch on `code`, never on `message` (the protocol says
 *   messages are for people).
 * - **Reconnecting without losing anything.** When the link drops (network,
 *   server restart 1012, keepalive failure, slow-reader close 4008) it reconnects
 *   with exponential back-off and jitter — jitter so that a classroom of thirty
 *   browsers does not hammer a restarted server in the same millisecond — then
 *   joins every session again with `since` (the last stored offset it saw), so
 *   the server replays what was missed before the `joined` reply. Listeners see
 *   the replayed events as ordinary `event`s, then a `joined` with
 *   `rejoin: true`, `recovered` and `replayed` (how many events came back).
 * - **Knowing when not to come back.** `disconnect` with `reconnect: false`
 *   (4403: erased or disconnected by the back end), a refused token (4401), and
 *   the end of a session (close 1000) stop the client; it emits `closed` with
 *   the reason so the page can tell the user. An expired token (4401 with
 *   `reconnect: true`) reconnects only when you passed `getToken` to fetch a
 *   fresh one.
 * - **Token refresh in place.** With `getToken`, the client fetches a new token
 *   `refresh_before` seconds before the current one's `expires_at` (both from
 *   `connected`) and sends `refresh`: the connection, its sessions and their
 *   offsets carry on. Sessions the new token no longer grants are dropped; a
 *   changed role re-renders (a `joined` with `refreshed: true`).
 * - **Safe publish retries.** Stored events get a `client_msg_id`; if the link
 *   drops before `published` arrives, the same publish is sent again after the
 *   rejoin and the server stores it at most once.
 * - **Keepalive.** It sends `ping` every `ping_interval` seconds (from
 *   `connected`); a missing `pong` is treated as a dead link and triggers a
 *   reconnect, because a half-open TCP connection can otherwise look alive for
 *   minutes on a phone that changed networks.
 *
 * Usage:
 *
 * ```js
 * import { ClassroomClient, ClassroomError } from "/static/classroom.js";
 * const client = new ClassroomClient({ token });
 * client.on("event", (frame) => console.log(frame.event.kind, frame.event));
 * client.on("status", ({ state }) => console.log(state));
 * const me = await client.connect();          // rejects with ClassroomError("unauthorized")
 * const joined = await client.join("demo-lesson");
 * await client.publish("demo-lesson", { kind: "chat", text: "Hallo!" });
 * ```
 *
 * Pages served by the classroom server connect to `ws(s)://<same host>/ws`; pass
 * `url` to connect elsewhere (the server's Content-Security-Policy only allows
 * its own origin, so that is for pages you serve yourself).
 *
 * Events emitted (`client.on(type, listener)`, which returns an "off" function):
 *
 * | type | payload |
 * |---|---|
 * | `status` | `{state, attempt?, delay?, code?, reason?}`; `state` is `connecting`, `open`, `reconnecting` or `closed` |
 * | `connected` | the `connected` reply (`me`, `client`, `ping_interval`, `expires_at`, `refresh_before`) after every (re)connect |
 * | `joined` | `{session, reply, rejoin, recovered, replayed, refreshed?}` after every join, including automatic rejoins, and when a refreshed token changed the role |
 * | `refreshed` | the `refreshed` reply (`me`, `expires_at`, `left`, `rejoined`) after an in-place token refresh |
 * | `event` | an `event` push (`session`, `event`, and `epoch`/`offset` for stored kinds) |
 * | `presence.join`, `presence.leave`, `progress` | those pushes, unchanged |
 * | `disconnect` | the server's `disconnect` frame, before the close |
 * | `error` | a {@link ClassroomError} that belongs to no command (an `error` push, a failed rejoin) |
 * | `closed` | `{code, reason, error?}` when the client has stopped for good |
 *
 * @module classroom
 */

/** The WebSocket subprotocol of the default (JSON) codec. */
export const SUBPROTOCOL = "classroom.v1.json";

/**
 * How frames go on the wire: the subprotocol that selects the encoding, and its
 * encoder and decoder. `binary` codecs get `ArrayBuffer` messages.
 * @typedef {{subprotocol: string, binary: boolean, encode: (frame: object) => string | Uint8Array, decode: (data: unknown) => unknown}} Codec
 */

/** JSON, the default: every host has it built in. @type {Codec} */
export const jsonCodec = Object.freeze({
  subprotocol: SUBPROTOCOL,
  binary: false,
  encode: (frame) => JSON.stringify(frame),
  decode: (data) => JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(asBytes(data))),
});

/**
 * MessagePack, with the `encode` and `decode` of a library you bring
 * (`@msgpack/msgpack`, `msgpackr`, ...): the package has no dependency to pin for
 * the teams that do not want it.
 *
 * ```js
 * import { encode, decode } from "@msgpack/msgpack";
 * new ClassroomClient({ url, token, codec: msgpackCodec({ encode, decode }) });
 * ```
 * @param {{encode: (value: unknown) => Uint8Array, decode: (bytes: Uint8Array) => unknown}} library
 * @returns {Codec}
 */
export function msgpackCodec(library) {
  if (typeof library?.encode !== "function" || typeof library?.decode !== "function") {
    throw new TypeError("msgpackCodec needs a library with encode() and decode()");
  }
  return Object.freeze({
    subprotocol: "classroom.v1.msgpack",
    binary: true,
    encode: (frame) => library.encode(frame),
    decode: (data) => {
      if (typeof data === "string") throw new TypeError("a text frame on a MessagePack connection");
      return library.decode(asBytes(data));
    },
  });
}

/** A binary message as bytes, whatever the host hands over (ArrayBuffer, Buffer, view). */
function asBytes(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) return asBytes(concatBytes(data)); // `ws` fragments
  throw new TypeError("a binary message of an unknown kind");
}

function concatBytes(chunks) {
  const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), at);
    at += chunk.byteLength;
  }
  return bytes;
}

/**
 * Error codes: the server's (protocol section 11) and this client's own.
 * @readonly
 * @enum {string}
 */
export const ErrorCode = Object.freeze({
  BAD_REQUEST: "bad_request",
  UNAUTHORIZED: "unauthorized",
  FORBIDDEN: "forbidden",
  RATE_LIMITED: "rate_limited",
  UNAVAILABLE: "unavailable",
  INTERNAL: "internal",
  /** No reply within the request timeout (the command may still have run). */
  TIMEOUT: "timeout",
  /** The connection dropped before the reply came (the command may have run). */
  CONNECTION_LOST: "connection_lost",
  /** The client was closed (by you, or for good by the server). */
  CLOSED: "closed",
});

const RETRYABLE = new Set([
  ErrorCode.RATE_LIMITED, ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.CONNECTION_LOST,
]);

/** Kinds the server does not store: no offset, no replay, so no client_msg_id either. */
const EPHEMERAL_KINDS = new Set(["pointer", "reaction"]);

/**
 * A failed command or a refused connection. `code` is what programs branch on.
 */
export class ClassroomError extends Error {
  /**
   * @param {string} code one of {@link ErrorCode} (or a newer server code)
   * @param {string} message for people and logs
   * @param {{frame?: object, closeCode?: number, session?: string}} [details]
   */
  constructor(code, message, details = {}) {
    super(message || code);
    this.name = "ClassroomError";
    /** @type {string} */
    this.code = code;
    /** The server's `error` frame, when there was one. */
    this.frame = details.frame;
    /** The WebSocket close code, when the error is about a close. */
    this.closeCode = details.closeCode;
    /** The session a failed automatic rejoin was for. */
    this.session = details.session;
  }

  /** Whether trying the same thing again later can succeed. */
  get retryable() {
    return RETRYABLE.has(this.code);
  }
}

/**
 * The WebSocket URL of the classroom server that served this page.
 * @param {Location} [loc]
 * @returns {string}
 */
export function defaultUrl(loc = globalThis.location) {
  if (!loc || !loc.host) {
    // React Native, Node, a worker: there is no page to take the host from.
    throw new ClassroomError(ErrorCode.BAD_REQUEST, "pass `url`: there is no page location here");
  }
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws`;
}

/**
 * A random id for `client_msg_id`. Not `crypto.randomUUID()`: that exists only in
 * secure contexts, and a trainer testing on a phone over plain http on the
 * local network would lose it.
 * @returns {string}
 */
export function randomId() {
  const bytes = new Uint8Array(12);
  if (globalThis.crypto?.getRandomValues) {
    globalThis.crypto.getRandomValues(bytes);
  } else {
    // React Native without a crypto polyfill: unique enough for an idempotency key.
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A client of one classroom server, for one user (one token), any number of sessions.
 */
export class ClassroomClient {
  /**
   * @param {object} options
   * @param {string} options.token the connection token (a JWT from the tenant's back end)
   * @param {string} [options.url] WebSocket URL; default: `/ws` on the page's own host
   * @param {() => Promise<string>} [options.getToken] fetches a fresh token: shortly
   *   before the current one expires (sent as `refresh` on the live connection), and
   *   after an expiry closed it; without it, expiry stops the client
   * @param {number} [options.requestTimeout=10000] ms to wait for a reply
   * @param {number} [options.backoffInitial=500] ms: the first reconnect delay's scale
   * @param {number} [options.backoffMax=10000] ms: the largest reconnect delay
   * @param {typeof WebSocket} [options.WebSocket] for tests and non-browser hosts
   * @param {string[]} [options.features] protocol features to announce (`presence.diff`,
   *   `poll.tally.coalesced`)
   * @param {Codec} [options.codec] the encoding: {@link jsonCodec} (default) or {@link msgpackCodec}
   */
  constructor(options) {
    if (!options || typeof options.token !== "string" || !options.token) {
      throw new ClassroomError(ErrorCode.UNAUTHORIZED, "a connection token is required");
    }
    this._token = options.token;
    this._url = options.url || defaultUrl();
    this._getToken = options.getToken || null;
    this._requestTimeout = options.requestTimeout ?? 10000;
    this._backoffInitial = options.backoffInitial ?? 500;
    this._backoffMax = options.backoffMax ?? 10000;
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    this._codec = options.codec || jsonCodec;
    /** Optional protocol features to announce on `connect` (e.g. `presence.diff`). */
    this._features = Array.isArray(options.features) ? [...options.features] : [];

    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    /** @type {WebSocket | null} */
    this._ws = null;
    this._state = "idle";
    this._nextId = 1;
    /** @type {Map<number, {resolve: Function, reject: Function, timer: number, ws: WebSocket}>} */
    this._pending = new Map();
    /**
     * Sessions to (re)join, with the newest stored position seen in each.
     * `live` once joined (so reconnects rejoin it); `reply` is the latest `joined`.
     * @type {Map<string, {epoch: string | null, offset: number | null, live: boolean, reply?: object}>}
     */
    this._sessions = new Map();
    /** Sessions being rejoined, with the number of replayed events seen so far. */
    this._replaying = new Map();
    this._attempt = 0;
    this._retryTimer = null;
    this._pingTimer = null;
    this._refreshTimer = null;
    this._lastDisconnect = null;
    this._me = null;
    this._stopped = false;
    /** Resolves when the current connection is up and every session rejoined. */
    this._ready = null;
    this._readyResolve = null;
    this._readyDone = false;
    this._firstConnect = null;
    this._onOnline = () => this._retryNow();
    globalThis.addEventListener?.("online", this._onOnline);
  }

  // -- events ------------------------------------------------------------------------

  /**
   * Listen to one kind of thing the client reports (see the module's table).
   * @param {string} type
   * @param {(payload: any) => void} listener
   * @returns {() => void} call it to stop listening
   */
  on(type, listener) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(listener);
    return () => this._listeners.get(type)?.delete(listener);
  }

  _emit(type, payload) {
    for (const listener of [...(this._listeners.get(type) || [])]) {
      try {
        listener(payload);
      } catch (err) {
        // A page's bug must not stop the protocol: report it and carry on.
        console.error(`classroom.js: a "${type}" listener failed`, err);
      }
    }
  }

  /** `idle`, `connecting`, `open`, `reconnecting` or `closed`. */
  get state() {
    return this._state;
  }

  /** The user's own profile from `connected`, or null before the first connect. */
  get me() {
    return this._me;
  }

  /**
   * The newest stored position seen in a session (what a rejoin asks to resume from).
   * @param {string} session
   * @returns {{epoch: string, offset: number} | null}
   */
  position(session) {
    const entry = this._sessions.get(session);
    return entry && entry.epoch !== null ? { epoch: entry.epoch, offset: entry.offset } : null;
  }

  _setState(state, extra = {}) {
    this._state = state;
    this._emit("status", { state, ...extra });
  }

  // -- connecting ---------------------------------------------------------------------

  /**
   * Open the connection and authenticate. Resolves with `me` (the user's profile);
   * rejects with a {@link ClassroomError} (`unauthorized` for a refused token). After
   * the first success the client keeps itself connected until {@link close}.
   * @returns {Promise<object>}
   */
  connect() {
    if (this._firstConnect) return this._firstConnect;
    this._firstConnect = new Promise((resolve, reject) => {
      const offConnected = this.on("connected", (reply) => {
        offConnected();
        offClosed();
        resolve(reply.me);
      });
      const offClosed = this.on("closed", ({ error }) => {
        offConnected();
        offClosed();
        reject(error || new ClassroomError(ErrorCode.CLOSED, "closed"));
      });
    });
    this._newReadyPromise();
    this._open();
    return this._firstConnect;
  }

  /** A fresh "connected and rejoined" gate; commands wait on it while reconnecting. */
  _newReadyPromise() {
    this._readyDone = false;
    this._ready = new Promise((resolve) => {
      this._readyResolve = () => {
        this._readyDone = true;
        resolve();
      };
    });
  }

  _open() {
    if (this._stopped) return;
    this._setState(this._attempt === 0 && !this._me ? "connecting" : "reconnecting",
      { attempt: this._attempt });
    let ws;
    try {
      ws = new this._WebSocket(this._url, [this._codec.subprotocol]);
      if (this._codec.binary) ws.binaryType = "arraybuffer"; // not Blob: decoding stays synchronous
    } catch (err) {
      this._stop(1006, String(err), new ClassroomError(ErrorCode.CLOSED, String(err)));
      return;
    }
    this._ws = ws;
    this._lastDisconnect = null;
    ws.onopen = () => this._authenticate(ws);
    ws.onmessage = (message) => this._receive(ws, message);
    ws.onclose = (event) => this._closed(ws, event.code, event.reason);
    // `error` is always followed by `close`, which carries what we need.
    ws.onerror = () => {};
  }

  async _authenticate(ws) {
    let reply;
    try {
      const connect = { type: "connect", token: this._token };
      if (this._features.length) connect.features = this._features;
      reply = await this._send(ws, connect);
    } catch (err) {
      if (err.code === ErrorCode.UNAUTHORIZED) {
        // The token is refused: retrying with it cannot help.
        this._stop(4401, err.message, err);
      } else {
        this._drop(ws, 1006, "connect failed"); // and try again after a back-off
      }
      return;
    }
    if (ws !== this._ws) return;
    this._me = reply.me;
    this._attempt = 0;
    this._startPinging(ws, reply.ping_interval);
    this._scheduleRefresh(ws, reply);
    this._setState("open");
    this._emit("connected", reply);
    await this._rejoinAll(ws);
    if (ws === this._ws) this._readyResolve?.();
  }

  async _rejoinAll(ws) {
    for (const [session, entry] of [...this._sessions]) {
      if (ws !== this._ws) return;
      if (!entry.live) continue; // a join() in flight does its own joining
      try {
        await this._join(ws, session, true);
      } catch (err) {
        if (ws !== this._ws) return;
        if (err.code === ErrorCode.FORBIDDEN) {
          // Ended, or no longer granted: stop trying, tell the page.
          this._sessions.delete(session);
          err.session = session;
          this._emit("error", err);
        } else if (err.retryable) {
          // The server could not serve the join now: reconnect later and try again.
          this._drop(ws, 1013, "rejoin failed");
          return;
        } else {
          err.session = session;
          this._emit("error", err);
        }
      }
    }
  }

  async _join(ws, session, rejoin) {
    const entry = this._sessions.get(session);
    const frame = { type: "join", session };
    if (entry && entry.epoch !== null) frame.since = { epoch: entry.epoch, offset: entry.offset };
    this._replaying.set(session, 0);
    let reply;
    let replayed = 0;
    try {
      reply = await this._send(ws, frame);
    } finally {
      replayed = this._replaying.get(session) || 0;
      this._replaying.delete(session);
    }
    if (rejoin && !this._sessions.has(session)) return reply; // left meanwhile
    const current = this._sessions.get(session) || { epoch: null, offset: null, live: false };
    current.epoch = reply.epoch;
    current.offset = reply.offset;
    current.live = true;
    current.reply = reply;
    this._sessions.set(session, current);
    const info = { session, reply, rejoin, recovered: reply.recovered === true, replayed };
    this._emit("joined", info);
    return reply;
  }

  _closed(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._stopPinging();
    if (this._readyDone) this._newReadyPromise();
    this._failPending(ws, new ClassroomError(ErrorCode.CONNECTION_LOST,
      `connection closed (${code})`, { closeCode: code }));
    if (this._stopped) return;
    const notice = this._lastDisconnect;
    if (notice && notice.reconnect === false) {
      this._stop(code, notice.reason, new ClassroomError(
        code === 4403 ? ErrorCode.FORBIDDEN : ErrorCode.CLOSED, notice.reason,
        { frame: notice, closeCode: code }));
      return;
    }
    if (code === 4401) {
      if (notice && notice.reconnect && this._getToken) {
        this._refreshTokenThenRetry(code, reason);
      } else {
        this._stop(code, reason, new ClassroomError(ErrorCode.UNAUTHORIZED,
          reason || "token refused or expired", { closeCode: code }));
      }
      return;
    }
    if (code === 1000) {
      // The session ended (and this connection had no other): nothing to come back to.
      this._stop(code, reason, null);
      return;
    }
    this._scheduleRetry(code, reason);
  }

  async _refreshTokenThenRetry(code, reason) {
    try {
      this._token = await this._getToken();
    } catch (err) {
      this._stop(code, reason, new ClassroomError(ErrorCode.UNAUTHORIZED,
        "could not get a fresh token", { closeCode: code }));
      return;
    }
    this._scheduleRetry(code, reason);
  }

  /**
   * Exponential back-off with jitter: the n-th retry waits between half and all of
   * `min(backoffMax, backoffInitial * 2^n)`, plus a floor for some close codes.
   */
  _retryDelay(code) {
    const ceiling = Math.min(this._backoffMax, this._backoffInitial * 2 ** this._attempt);
    let floor = 0;
    if (code === 1012) floor = 1000; // restart: give the server a moment (protocol: 1-5 s)
    if (code === 4400) floor = 30000; // our own bug: do not loop fast on it
    return Math.round(floor + ceiling / 2 + Math.random() * (ceiling / 2));
  }

  _scheduleRetry(code, reason) {
    const delay = this._retryDelay(code);
    this._attempt += 1;
    this._setState("reconnecting", { attempt: this._attempt, delay, code, reason });
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._open();
    }, delay);
  }

  /** The browser says the network is back: do not sit out the rest of a long back-off. */
  _retryNow() {
    if (this._retryTimer === null || this._stopped) return;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._open();
  }

  /** Give up on a socket at once (dead link, failed rejoin) and reconnect. */
  _drop(ws, code, reason) {
    if (ws !== this._ws) return;
    try {
      ws.close(4000, reason);
    } catch {
      // already closing
    }
    this._closed(ws, code, reason);
  }

  _stop(code, reason, error) {
    if (this._stopped) return;
    this._stopped = true;
    clearTimeout(this._retryTimer);
    this._stopPinging();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      try {
        ws.close(1000, "bye");
      } catch {
        // already closing
      }
    }
    this._failPending(null, new ClassroomError(ErrorCode.CLOSED, reason || "closed",
      { closeCode: code }));
    globalThis.removeEventListener?.("online", this._onOnline);
    this._readyResolve?.(); // release waiting commands: they see _stopped and fail
    this._setState("closed", { code, reason });
    this._emit("closed", { code, reason, error });
  }

  /** Close for good: leave nothing running. Pending commands reject with `closed`. */
  close() {
    this._stop(1000, "closed by the client", null);
  }

  // -- keepalive ------------------------------------------------------------------------

  _startPinging(ws, interval) {
    this._stopPinging();
    if (!interval || interval <= 0) return;
    this._pingTimer = setInterval(async () => {
      if (ws !== this._ws) return;
      try {
        await this._send(ws, { type: "ping" });
      } catch (err) {
        if (err.code === ErrorCode.TIMEOUT) this._drop(ws, 1006, "no pong");
      }
    }, interval * 1000);
  }

  _stopPinging() {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
  }

  // -- token refresh --------------------------------------------------------------------

  /** Plan the next in-place refresh from a `connected` or `refreshed` reply. */
  _scheduleRefresh(ws, reply) {
    clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    if (!this._getToken || typeof reply.expires_at !== "number") return;
    const before = typeof reply.refresh_before === "number" ? reply.refresh_before : 60;
    const delay = Math.max(0, (reply.expires_at - before) * 1000 - Date.now());
    this._refreshTimer = setTimeout(() => this._refreshInPlace(ws), delay);
  }

  async _refreshInPlace(ws) {
    if (ws !== this._ws) return;
    let reply;
    try {
      const token = await this._getToken();
      reply = await this._send(ws, { type: "refresh", token });
      this._token = token;
    } catch (err) {
      // The old token stays in force until it expires; expiry then reconnects.
      if (ws === this._ws) this._emit("error", err);
      return;
    }
    if (ws !== this._ws) return;
    this._me = reply.me;
    for (const session of reply.left || []) this._sessions.delete(session);
    this._scheduleRefresh(ws, reply);
    this._emit("refreshed", reply);
  }

  /** A `joined` without `id`: a refreshed token changed how this user sees a session. */
  _onRejoined(frame) {
    const entry = this._sessions.get(frame.session);
    if (!entry) return;
    entry.epoch = frame.epoch;
    entry.offset = frame.offset;
    entry.reply = frame;
    this._emit("joined", { session: frame.session, reply: frame, rejoin: false,
      recovered: true, replayed: 0, refreshed: true });
  }

  // -- frames ---------------------------------------------------------------------------

  _send(ws, frame) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== 1) {
        reject(new ClassroomError(ErrorCode.CONNECTION_LOST, "not connected"));
        return;
      }
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new ClassroomError(ErrorCode.TIMEOUT, `no reply to ${frame.type}`));
      }, this._requestTimeout);
      this._pending.set(id, { resolve, reject, timer, ws });
      ws.send(this._codec.encode({ ...frame, id }));
    });
  }

  _failPending(ws, error) {
    for (const [id, pending] of this._pending) {
      if (ws !== null && pending.ws !== ws) continue;
      clearTimeout(pending.timer);
      this._pending.delete(id);
      pending.reject(error);
    }
  }

  _receive(ws, message) {
    if (ws !== this._ws) return;
    let frame;
    try {
      frame = this._codec.decode(message.data);
    } catch {
      console.error(`classroom.js: a frame that is not ${this._codec.subprotocol}`);
      return;
    }
    if (frame === null || typeof frame !== "object") return;
    if (typeof frame.id === "number" && this._pending.has(frame.id)) {
      const pending = this._pending.get(frame.id);
      this._pending.delete(frame.id);
      clearTimeout(pending.timer);
      if (frame.type === "error") {
        pending.reject(new ClassroomError(frame.code, frame.message, { frame }));
      } else {
        pending.resolve(frame);
      }
      return;
    }
    switch (frame.type) {
      case "event":
        this._onEvent(frame);
        break;
      case "presence.join":
      case "presence.leave":
      case "presence.diff":
      case "presence.count":
      case "progress":
        this._emit(frame.type, frame);
        break;
      case "joined":
        this._onRejoined(frame);
        break;
      case "disconnect":
        this._lastDisconnect = frame;
        this._emit("disconnect", frame);
        break;
      case "error":
        this._emit("error", new ClassroomError(frame.code, frame.message, { frame }));
        break;
      default:
        // Newer servers may push more types: ignore what we do not know.
        break;
    }
  }

  _onEvent(frame) {
    const entry = this._sessions.get(frame.session);
    if (typeof frame.offset === "number" && entry) {
      if (entry.epoch === frame.epoch && entry.offset !== null && frame.offset <= entry.offset) {
        return; // already seen: the protocol promises no duplicates, this is belt and braces
      }
      entry.epoch = frame.epoch;
      entry.offset = frame.offset;
    }
    if (this._replaying.has(frame.session)) {
      this._replaying.set(frame.session, this._replaying.get(frame.session) + 1);
    }
    if (frame.event && frame.event.kind === "session.ended") {
      this._sessions.delete(frame.session); // never rejoin an ended session
    }
    this._emit("event", frame);
  }

  // -- commands ---------------------------------------------------------------------------

  /**
   * Wait until connected and rejoined (at most `timeout` ms), then send.
   * @returns {Promise<object>} the reply frame
   */
  async request(type, fields = {}) {
    if (this._stopped) throw new ClassroomError(ErrorCode.CLOSED, "the client is closed");
    if (!this._firstConnect) throw new ClassroomError(ErrorCode.CLOSED, "call connect() first");
    await this._waitReady();
    return this._send(this._ws, { type, ...fields });
  }

  /**
   * While (re)connecting, wait for the rejoins, so that nothing is sent to a session
   * not yet joined again; give up after the request timeout.
   */
  async _waitReady() {
    if (!this._readyDone) {
      let timer;
      const timedOut = await Promise.race([
        this._ready.then(() => false),
        new Promise((resolve) => {
          timer = setTimeout(() => resolve(true), this._requestTimeout);
        }),
      ]);
      clearTimeout(timer);
      if (this._stopped) throw new ClassroomError(ErrorCode.CLOSED, "the client is closed");
      if (timedOut) throw new ClassroomError(ErrorCode.CONNECTION_LOST, "not connected");
    }
    if (this._stopped) throw new ClassroomError(ErrorCode.CLOSED, "the client is closed");
  }

  /**
   * Join a session; it is rejoined automatically (with `since`) after every reconnect.
   * @param {string} session
   * @returns {Promise<object>} the `joined` reply (`state`, `participants`, `me`, ...)
   */
  async join(session) {
    if (this._stopped) throw new ClassroomError(ErrorCode.CLOSED, "the client is closed");
    if (!this._firstConnect) throw new ClassroomError(ErrorCode.CLOSED, "call connect() first");
    if (!this._sessions.has(session)) {
      this._sessions.set(session, { epoch: null, offset: null, live: false });
    }
    for (;;) {
      await this._waitReady();
      const entry = this._sessions.get(session);
      if (entry && entry.live) return entry.reply; // rejoined meanwhile by the reconnect logic
      try {
        return await this._join(this._ws, session, false);
      } catch (err) {
        if (err.code !== ErrorCode.CONNECTION_LOST) {
          this._sessions.delete(session);
          throw err;
        }
      }
    }
  }

  /**
   * Leave a session (and stop rejoining it).
   * @param {string} session
   */
  async leave(session) {
    this._sessions.delete(session);
    return this.request("leave", { session });
  }

  /**
   * Publish an event. Stored kinds carry a `client_msg_id` (yours, or a random one)
   * and are sent again after a reconnect when the reply was lost, so a flaky network
   * neither loses nor doubles them. `rate_limited` is retried after a short pause.
   * @param {string} session
   * @param {{kind: string}} event
   * @param {{clientMsgId?: string, attempts?: number}} [options]
   * @returns {Promise<object>} the `published` reply (`offset` for stored kinds)
   */
  async publish(session, event, options = {}) {
    const ephemeral = EPHEMERAL_KINDS.has(event.kind);
    const fields = { session, event };
    if (!ephemeral) fields.client_msg_id = options.clientMsgId || randomId();
    const attempts = ephemeral ? 1 : (options.attempts ?? 4);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.request("publish", fields);
      } catch (err) {
        if (attempt >= attempts || !err.retryable) throw err;
        await sleep(err.code === ErrorCode.RATE_LIMITED ? 1000 : 250 * attempt);
      }
    }
  }

  /** Who is online in a session. */
  presence(session) {
    return this.request("presence", { session });
  }

  /**
   * Stored events of a session.
   * @param {string} session
   * @param {{since?: {epoch: string, offset: number}, limit?: number}} [options]
   */
  history(session, options = {}) {
    const fields = { session };
    if (options.since) fields.since = options.since;
    if (options.limit) fields.limit = options.limit;
    return this.request("history", fields);
  }

  /** The cohort progress table (trainers, planners, content managers). */
  cohort(session) {
    return this.request("cohort", { session });
  }

  /** OpenTok credentials for the session's video room; `unavailable` when not configured. */
  video(session) {
    return this.request("video", { session });
  }

  /** Round trip to the server. */
  ping() {
    return this.request("ping");
  }
}
