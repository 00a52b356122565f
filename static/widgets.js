/**
 * Pieces of UI the student and trainer pages share: chat, presence, reactions,
 * poll tallies and the lesson timer, and the wiring of the stage (`stage.js`).
 * Everything builds DOM with textContent (never HTML), because chat text and
 * names come from other users.
 *
 * @module widgets
 */

import { $, h, personName } from "./common.js";
import { formatTime, t, tn } from "./i18n.js";
import { Stage, stageElements } from "./stage.js";
import { VideoPanel } from "./video.js";

/**
 * The chat: a log of messages (appended, not redrawn, so screen readers announce
 * only the new ones) and a form to send.
 */
export class ChatPanel {
  /**
   * @param {{list: HTMLElement, form: HTMLFormElement, input: HTMLInputElement,
   *   empty: HTMLElement, privateBox?: HTMLInputElement | null}} elements
   * @param {{viewerRole: string, send: (text: string, toTrainers: boolean) => Promise<void>,
   *   remove?: (offset: number) => void}} options `remove`: the trainer may remove messages
   */
  constructor(elements, options) {
    this.el = elements;
    this.viewerRole = options.viewerRole;
    this.remove = options.remove || null;
    this._rendered = [];
    this.el.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = this.el.input.value.trim();
      if (!text) return;
      this.el.input.value = "";
      const toTrainers = Boolean(this.el.privateBox && this.el.privateBox.checked);
      try {
        await options.send(text, toTrainers);
      } catch {
        this.el.input.value = text; // keep what the user typed; the error is shown elsewhere
      }
    });
  }

  /** @param {{offset: number, by: object, text: string, at: number, removed?: boolean}[]} messages */
  render(messages, me) {
    const keys = messages.map((m) => `${m.offset}:${m.removed ? 1 : 0}`);
    const prefixSame = this._rendered.length <= keys.length
      && this._rendered.every((key, index) => keys[index] === key);
    if (!prefixSame) {
      this.el.list.replaceChildren();
      this._rendered = [];
    }
    for (const message of messages.slice(this._rendered.length)) {
      this.el.list.append(this._item(message, me));
      this._rendered.push(`${message.offset}:${message.removed ? 1 : 0}`);
    }
    this.el.empty.hidden = messages.length > 0;
    this.el.list.scrollTop = this.el.list.scrollHeight;
  }

  /** Redraw everything (after a language switch: "you" and times change). */
  redraw(messages, me) {
    this._rendered = [];
    this.el.list.replaceChildren();
    this.render(messages, me);
  }

  _item(message, me) {
    if (message.removed) {
      return h("li", { class: "chat-item removed", dataset: { offset: String(message.offset) } },
        h("span", { class: "chat-text", text: t("chat.removed") }));
    }
    const own = me && message.by && message.by.pid === me.pid;
    const name = personName(message.by, this.viewerRole) + (own ? ` (${t("common.you")})` : "");
    const classes = ["chat-item", own ? "own" : "", message.to ? "private" : ""].filter(Boolean);
    const item = h("li", { class: classes.join(" "), dataset: { offset: String(message.offset) } },
      h("span", { class: "chat-meta" },
        h("strong", { text: name }), " ",
        h("time", { text: formatTime(message.at || 0) }),
        message.to ? h("span", { class: "badge badge-private", text: t("chat.private_badge") }) : null),
      h("span", { class: "chat-text", text: message.text }));
    if (this.remove && typeof message.offset === "number") {
      item.append(h("button", {
        type: "button", class: "button button-small chat-remove",
        "aria-label": t("chat.remove_from", { name }),
        onclick: () => this.remove(message.offset),
      }, t("chat.remove")));
    }
    return item;
  }
}

/**
 * Who is present, with a hand symbol (and its text, for screen readers) for
 * raised hands. Students see display names only.
 */
export function renderPeople(list, countEl, model, viewerRole) {
  const raised = new Set(model.hands.map((p) => p.pid));
  list.replaceChildren();
  for (const participant of model.participants.values()) {
    const own = model.me && participant.pid === model.me.pid;
    const name = personName(participant, viewerRole) + (own ? ` (${t("common.you")})` : "");
    const role = t(`role.${participant.role}`);
    const item = h("li", { class: "person", dataset: { pid: participant.pid } },
      h("span", { class: "person-name", text: name }),
      h("span", { class: "person-role", text: role }));
    if (raised.has(participant.pid)) {
      item.append(h("span", { class: "hand-icon", "aria-hidden": "true", text: "✋" }),
        h("span", { class: "sr-only", text: t("hand.raised_label") }));
    }
    list.append(item);
  }
  countEl.textContent = t("people.count", { count: model.participants.size });
}

/** The reaction buttons' emoji and their spoken names. */
export const REACTIONS = [
  { emoji: "👍", key: "reactions.thumbs" },
  { emoji: "👏", key: "reactions.clap" },
  { emoji: "😕", key: "reactions.confused" },
  { emoji: "🐢", key: "reactions.slower" },
];

/**
 * Reaction buttons and a short-lived feed of everyone's reactions.
 * @param {HTMLElement} buttons container for the buttons
 * @param {HTMLElement} feed list the reactions appear in (a polite live region)
 * @param {(emoji: string) => void} send
 */
export function setupReactions(buttons, feed, send) {
  const render = () => {
    buttons.replaceChildren(...REACTIONS.map(({ emoji, key }) =>
      h("button", {
        type: "button", class: "reaction-button", "aria-label": t(key), title: t(key),
        onclick: () => send(emoji),
      }, emoji)));
  };
  render();
  return {
    render,
    /** Show someone's reaction for a few seconds. */
    show(name, emoji) {
      const item = h("li", { text: t("reactions.from", { name, emoji }) });
      feed.append(item);
      while (feed.children.length > 5) feed.firstElementChild.remove();
      setTimeout(() => item.remove(), 6000);
    },
  };
}

/**
 * Poll results: one row per option with its count, as text and as a bar.
 * @param {HTMLElement} list
 * @param {string[]} options
 * @param {number[]} counts
 */
export function renderTally(list, options, counts, hidden = false) {
  if (hidden) {
    list.replaceChildren(h("li", { class: "muted", text: t("poll.results_hidden") }));
    return;
  }
  const total = counts.reduce((sum, n) => sum + n, 0);
  list.replaceChildren(...options.map((option, index) => {
    const count = counts[index] || 0;
    const bar = h("span", { class: "bar" });
    bar.style.width = `${total ? Math.round((count / total) * 100) : 0}%`;
    return h("li", { class: "tally-row", dataset: { option: String(index) } },
      h("span", { class: "tally-label" },
        h("span", { class: "tally-option", text: option }),
        h("span", { class: "tally-count", text: tn("poll.votes", count) })),
      h("span", { class: "bar-track", "aria-hidden": "true" }, bar));
  }));
}

/**
 * The panels the student screen and the trainer console share, wired to the
 * page's element ids: the stage, chat, reactions and video. One place, so both
 * pages lay out and behave alike.
 * @param {import("./classroom.js").ClassroomClient} client
 * @param {string} session
 * @param {{display_name?: string}} me
 * @param {"student" | "trainer"} viewerRole
 * @param {(event: object) => Promise<unknown>} publish
 * @param {{removeChat?: (offset: number) => void}} [extra]
 */
export function lessonPanels(client, session, me, viewerRole, publish, extra = {}) {
  const stage = new Stage(stageElements());
  const privateBox = /** @type {HTMLInputElement | null} */ (document.getElementById("chat-private"));
  const chat = new ChatPanel(
    { list: $("chat-list"), form: $("chat-form"), input: $("chat-input"),
      empty: $("chat-empty"), privateBox },
    {
      viewerRole,
      send: (text, toTrainers) => publish({ kind: "chat", text, ...(toTrainers ? { to: "trainers" } : {}) }),
      remove: extra.removeChat,
    },
  );
  const reactions = setupReactions($("reaction-buttons"), $("reaction-feed"),
    (emoji) => publish({ kind: "reaction", emoji }));
  const video = new VideoPanel(client, session, {
    status: $("video-status"), join: $("video-join"), leave: $("video-leave"),
    stage: $("video-stage"),
  }, me.display_name || "");
  return { stage, chat, reactions, video };
}

/**
 * The lesson timer both pages show: minutes and seconds left, ticking locally
 * from the server's `ends_at`.
 * @param {HTMLElement} element
 * @param {() => {seconds: number, ends_at: number} | null} timer
 */
export function bindTimer(element, timer) {
  const tick = () => {
    const running = timer();
    element.hidden = !running;
    if (!running) return;
    const left = Math.max(0, Math.round(running.ends_at - Date.now() / 1000));
    const text = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    element.textContent = left > 0 ? t("timer.left", { time: text }) : t("timer.done");
    element.dataset.left = String(left);
  };
  tick();
  setInterval(tick, 1000);
  return tick;
}
