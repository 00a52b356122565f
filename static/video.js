/**
 * The video panel. Video is optional per deployment: the server answers the
 * `video` command with OpenTok (Vonage Video) credentials when it is configured
 * and with `unavailable` otherwise. OpenTok's web client (a large third-party
 * script) is loaded only after the server said video is available *and* the
 * user chose to join, so a tenant without video never loads it, and the page
 * works the same without it.
 *
 * @module video
 */

import { ErrorCode } from "./classroom.js";
import { onLangChange, t } from "./i18n.js";

/** OpenTok's web client; the Content-Security-Policy allows this host and no other. */
export const OPENTOK_SCRIPT = "https://static.opentok.com/v2/js/opentok.min.js";

let loading = null;

/** Load OpenTok's client once; resolves with the global `OT`. */
function loadOpenTok() {
  if (globalThis.OT) return Promise.resolve(globalThis.OT);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = OPENTOK_SCRIPT;
      script.async = true;
      script.onload = () => (globalThis.OT ? resolve(globalThis.OT) : reject(new Error("no OT")));
      script.onerror = () => {
        loading = null;
        script.remove();
        reject(new Error("could not load the video client"));
      };
      document.head.append(script);
    });
  }
  return loading;
}

export class VideoPanel {
  /**
   * @param {import("./classroom.js").ClassroomClient} client
   * @param {string} session
   * @param {{status: HTMLElement, join: HTMLButtonElement, leave: HTMLButtonElement,
   *   stage: HTMLElement}} elements
   * @param {string} name the name OpenTok shows under this user's video
   */
  constructor(client, session, elements, name) {
    this.client = client;
    this.session = session;
    this.el = elements;
    this.name = name;
    this.credentials = null;
    this.otSession = null;
    this.publisher = null;
    this._statusKey = "video.checking";
    this.el.join.addEventListener("click", () => this.join());
    this.el.leave.addEventListener("click", () => this.leave());
    onLangChange(() => this._status(this._statusKey));
  }

  _status(key) {
    this._statusKey = key;
    this.el.status.textContent = t(key);
    this.el.status.dataset.state = key.replace("video.", "");
  }

  /** Ask the server whether this session has video (no OpenTok script is loaded). */
  async check() {
    this._status("video.checking");
    this.el.join.hidden = true;
    this.el.leave.hidden = true;
    try {
      this.credentials = await this.client.video(this.session);
    } catch (err) {
      this.credentials = null;
      this._status(err.code === ErrorCode.UNAVAILABLE ? "video.unavailable" : "video.failed");
      return false;
    }
    this._status("video.available");
    this.el.join.hidden = false;
    return true;
  }

  /** Load OpenTok, connect to the room and publish (unless only allowed to watch). */
  async join() {
    this.el.join.disabled = true;
    this._status("video.loading");
    try {
      const expired = !this.credentials || this.credentials.expires_at * 1000 < Date.now() + 60000;
      if (expired) this.credentials = await this.client.video(this.session);
      const OT = await loadOpenTok();
      const { api_key: apiKey, session_id: sessionId, token, role } = this.credentials;
      const otSession = OT.initSession(apiKey, sessionId);
      otSession.on("streamCreated", (event) => {
        otSession.subscribe(event.stream, this.el.stage,
          { insertMode: "append", width: "100%", height: "100%" });
      });
      await new Promise((resolve, reject) => {
        otSession.connect(token, (error) => (error ? reject(error) : resolve()));
      });
      this.otSession = otSession;
      if (role !== "subscriber") {
        this.publisher = OT.initPublisher(this.el.stage,
          { insertMode: "append", width: "100%", height: "100%", name: this.name });
        otSession.publish(this.publisher);
      }
      this._status("video.joined");
      this.el.join.hidden = true;
      this.el.leave.hidden = false;
    } catch (err) {
      console.error("video failed", err);
      this._status(err && err.code === ErrorCode.UNAVAILABLE ? "video.unavailable" : "video.failed");
    } finally {
      this.el.join.disabled = false;
    }
  }

  leave() {
    if (this.otSession) this.otSession.disconnect();
    this.otSession = null;
    this.publisher = null;
    this.el.stage.replaceChildren();
    this.el.leave.hidden = true;
    this.el.join.hidden = false;
    this._status("video.available");
  }
}
