/**
 * What the three pages share: reading the token from the URL fragment, building
 * DOM without innerHTML, the connection status line, names of people as the
 * viewer may see them, and announcements for screen readers.
 *
 * @module common
 */

import { ClassroomClient, ErrorCode } from "./classroom.js";
import { lang, onLangChange, setupLanguage, t, tn } from "./i18n.js";

/**
 * The connection token of this page, taken from the URL fragment (`#token=...`).
 *
 * Why the fragment: browsers never send it to the server, so the token stays out
 * of access logs and proxies. It is removed from the address bar at once
 * (`history.replaceState`) so it does not linger in history or get copied along
 * with the URL, and kept in `sessionStorage` (this tab only) so that a reload
 * still works.
 *
 * @param {string} page a key per page, so a trainer tab and a dashboard tab do not mix
 * @returns {string | null}
 */
export function takeToken(page) {
  const key = `classroom.token.${page}`;
  const fragment = new URLSearchParams(globalThis.location.hash.replace(/^#/, ""));
  const fromFragment = fragment.get("token");
  if (fromFragment) {
    history.replaceState(history.state, "", globalThis.location.pathname + globalThis.location.search);
    try {
      sessionStorage.setItem(key, fromFragment);
    } catch {
      // storage disabled: the page still works until it is reloaded
    }
    return fromFragment;
  }
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Forget the stored token (it was refused). */
export function forgetToken(page) {
  try {
    sessionStorage.removeItem(`classroom.token.${page}`);
  } catch {
    // nothing stored
  }
}

/**
 * The session to open: `?session=`, or the token's only session.
 * @param {string[]} granted the `sessions` of `connected.me`
 * @returns {string | null}
 */
export function chooseSession(granted) {
  const asked = new URLSearchParams(globalThis.location.search).get("session");
  if (asked) return asked;
  return granted.length === 1 ? granted[0] : null;
}

/**
 * Create an element. Children are nodes or strings (always text, never HTML:
 * everything shown here can come from other users).
 * @param {string} tag
 * @param {Record<string, any>} [props] attributes; `class`, `text`, `dataset` and `on*` handled specially
 * @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

/** @param {string} id @returns {HTMLElement} */
export function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing #${id}`);
  return element;
}

/**
 * How the viewer may name a participant. Students see only display names (the
 * contract's privacy rule; the server sends no more, and we do not show more
 * even of ourselves, so that what is on a shared screen is the same for all);
 * trainers see students' full names.
 * @param {object | null | undefined} participant
 * @param {string} viewerRole
 */
export function personName(participant, viewerRole) {
  if (!participant) return t("person.someone");
  if (participant.pid === "server") return t("person.server");
  if (participant.pid === "erased" || participant.pid === "anonymous") return t("person.erased");
  if (viewerRole === "trainer" && participant.role === "student" && participant.name) {
    return participant.name;
  }
  if (participant.display_name) return participant.display_name;
  // Named by role, never guessed: a planner is not "a student".
  const byRole = {
    trainer: "person.trainer_anonymous", student: "person.student_anonymous",
    planner: "person.planner_anonymous", content_manager: "person.content_manager_anonymous",
  };
  return t(byRole[participant.role] || "person.someone");
}

/**
 * Tell screen-reader users about something that happened elsewhere on the page
 * (the trainer navigated, a poll opened). Uses the page's polite live region.
 * @param {string} message
 */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // A separate task, so the same message twice is still read out.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

/**
 * Show a lasting message (an error that stops the page) in `#notice`.
 * @param {string} message
 */
export function showNotice(message) {
  const notice = document.getElementById("notice");
  if (!notice) return;
  notice.textContent = message;
  notice.hidden = false;
}

/**
 * The page cannot work (no token, refused, wrong page): say why, say we are not
 * connected, and take away the lesson's controls, which would only look alive.
 * @param {string} message
 */
export function stopPage(message) {
  showNotice(message);
  const status = document.getElementById("status");
  if (status) {
    status.textContent = t("status.closed");
    status.dataset.state = "closed";
  }
  const main = document.getElementById("main");
  if (main) main.hidden = true;
}

/**
 * Show a short message that disappears by itself (a command failed, say), and
 * have screen readers read it at once.
 * @param {string} message
 */
export function flash(message) {
  let toast = document.getElementById("toast");
  if (!toast) {
    toast = h("div", { id: "toast", class: "toast", role: "alert" });
    document.body.append(toast);
  }
  toast.textContent = message;
  toast.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => {
    toast.hidden = true;
  }, 6000);
}

/**
 * A message for a failed command, in the user's language.
 * @param {any} err
 */
export function describeError(err) {
  const code = err && err.code;
  if (code === ErrorCode.RATE_LIMITED) return t("error.rate_limited");
  if (code === ErrorCode.UNAVAILABLE) return t("error.unavailable");
  if (code === ErrorCode.CONNECTION_LOST || code === ErrorCode.TIMEOUT) return t("error.connection");
  if (code === ErrorCode.FORBIDDEN) return t("error.forbidden");
  // bad_request and the rest: the server's message says which rule (it is English).
  return t("error.command", { message: err && err.message ? err.message : String(err) });
}

/**
 * Keep `#status` in sync with the client's connection state, including how many
 * missed events a reconnect recovered (the visible proof that nothing was lost).
 * @param {ClassroomClient} client
 */
export function bindStatus(client) {
  const status = document.getElementById("status");
  if (!status) return;
  let last = { key: "status.connecting", params: {}, state: "connecting" };
  let countdown = null;
  const show = (key, params, state) => {
    last = { key, params, state };
    status.textContent = "count" in params ? tn(key, params.count, params) : t(key, params);
    status.dataset.state = state;
  };
  client.on("status", ({ state, delay }) => {
    clearInterval(countdown);
    if (state === "reconnecting" && delay !== undefined) {
      let seconds = Math.ceil(delay / 1000);
      show("status.reconnecting", { seconds }, "reconnecting");
      countdown = setInterval(() => {
        seconds -= 1;
        if (seconds <= 0) {
          clearInterval(countdown);
          show("status.reconnecting_now", {}, "reconnecting");
        } else {
          show("status.reconnecting", { seconds }, "reconnecting");
        }
      }, 1000);
    } else if (state === "reconnecting") {
      show("status.reconnecting_now", {}, "reconnecting");
    } else if (state === "open") {
      show("status.open", {}, "open");
    } else if (state === "closed") {
      show("status.closed", {}, "closed");
    } else {
      show("status.connecting", {}, "connecting");
    }
  });
  client.on("joined", ({ rejoin, recovered, replayed }) => {
    if (!rejoin) return;
    if (!recovered) show("status.resynced", {}, "open");
    else if (replayed > 0) show("status.recovered", { count: replayed }, "open");
    else show("status.recovered_none", {}, "open");
  });
  onLangChange(() => show(last.key, last.params, last.state));
}

/**
 * The start every page shares: language, token, client, connect, role check,
 * session choice, and the messages when one of those fails.
 * @param {object} options
 * @param {string} options.page token storage key
 * @param {string[]} options.roles roles this page is for
 * @returns {Promise<{client: ClassroomClient, me: object, session: string, token: string} | null>}
 */
export async function start({ page, roles }) {
  setupLanguage(document.getElementById("lang-toggle"));
  const token = takeToken(page);
  if (!token) {
    stopPage(t("error.no_token"));
    return null;
  }
  // Coalesced tallies: a poll in a lecture of 500 sends each page one tally per 0.2 s, not
  // one per answer; the chart shows the newest counts either way.
  const client = new ClassroomClient({ token, features: ["poll.tally.coalesced"] });
  bindStatus(client);
  client.on("disconnect", (frame) => {
    if (frame.reconnect === false) showNotice(t("error.disconnected", { reason: frame.reason }));
  });
  client.on("closed", ({ error }) => {
    // The token expired while connected (these pages cannot fetch a new one).
    if (error && error.code === ErrorCode.UNAUTHORIZED && client.me) showNotice(t("error.unauthorized"));
  });
  let me;
  try {
    me = await client.connect();
  } catch (err) {
    if (err.code === ErrorCode.UNAUTHORIZED) forgetToken(page);
    stopPage(err.code === ErrorCode.UNAUTHORIZED ? t("error.unauthorized") : describeError(err));
    return null;
  }
  if (!roles.includes(me.role)) {
    client.close();
    stopPage(t("error.wrong_role"));
    return null;
  }
  const session = chooseSession(me.sessions || []);
  if (!session) {
    client.close();
    stopPage(t("error.no_session"));
    return null;
  }
  const sessionLabel = document.getElementById("session-label");
  if (sessionLabel) {
    const render = () => {
      sessionLabel.textContent = t("common.session", { session });
    };
    render();
    onLangChange(render);
  }
  return { client, me, session, token };
}

/**
 * Join the page's session; a refusal is shown to the user.
 * @returns {Promise<boolean>}
 */
export async function joinSession(client, session) {
  try {
    await client.join(session);
    return true;
  } catch (err) {
    if (err.code !== ErrorCode.FORBIDDEN) stopPage(describeError(err));
    // forbidden: either the token does not grant the session, or the session has ended.
    else if (!(client.me?.sessions || []).includes(session)) stopPage(t("error.forbidden_session"));
    else stopPage(t("error.ended"));
    return false;
  }
}

/** Current language, re-exported for page scripts that only import common. */
export { lang, t };

/**
 * Keep a page's participant list in step with presence pushes of one session.
 * Both the student screen and the trainer console show who is here; the
 * SessionModel already renders each person as the viewer may see them.
 * @param {import("./classroom.js").ClassroomClient} client
 * @param {string} session
 * @param {import("./model.js").SessionModel} model
 * @param {() => void} render called after every change
 */
export function followPresence(client, session, model, render) {
  client.on("presence.join", (frame) => {
    if (frame.session !== session) return;
    model.presenceJoin(frame.participant);
    render();
  });
  client.on("presence.leave", (frame) => {
    if (frame.session !== session) return;
    model.presenceLeave(frame.participant);
    render();
  });
}
