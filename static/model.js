/**
 * A page's copy of one session: the live state (protocol section 8), presence,
 * chat, and the annotations of every screen seen so far, kept up to date from
 * `joined`, `event` and presence frames.
 *
 * It follows the protocol's advice: after every `joined` the state is replaced by
 * `joined.state` and presence by `joined.participants` (presence changes are not
 * replayed); events apply on top in offset order. Chat is not part of the state,
 * so after a join that could not recover (`recovered: false`) the page reloads
 * it from `history` with {@link SessionModel#loadHistory}.
 *
 * @module model
 */

export class SessionModel {
  constructor() {
    /** This user's participant record in the session (from `joined.me`). */
    this.me = null;
    this.reset();
  }

  /** Forget everything derived from the stream (a new epoch, or a fresh join). */
  reset() {
    this.epoch = null;
    this.screen = null;
    this.locked = false;
    /** The open poll: `{poll, question, options, counts, answers?}` (answers: trainers only). */
    this.poll = null;
    /** The latest closed poll with its final counts, shown until the next one opens. */
    this.closedPoll = null;
    /** @type {object[]} raised hands in the order they went up */
    this.hands = [];
    /** @type {Map<string, object>} annotation id -> annotation, of every screen */
    this.annotations = new Map();
    /** @type {Map<string, object>} pid -> participant, in order of first join */
    this.participants = new Map();
    /** @type {{offset: number, by: object, text: string, at: number, to?: string, removed?: boolean}[]} */
    this.chat = [];
    /** What the trainer allows (state.options); the server's defaults until told. */
    this.options = { student_marks: true, student_pointers: false };
    /** The running lesson timer `{seconds, ends_at}`, or null. */
    this.timer = null;
    /** The roster's screens from `joined.screens` (null: the built-in course). */
    this.screens = null;
    this._chatOffsets = new Set();
    this.ended = false;
  }

  /**
   * Take over a `joined` reply.
   * @param {object} reply
   */
  applyJoined(reply) {
    if (this.epoch !== null && reply.epoch !== this.epoch) {
      this.reset(); // a new stream: nothing we hold belongs to it
    }
    this.epoch = reply.epoch;
    this.me = reply.me || this.me;
    const state = reply.state || {};
    this.screen = state.screen ?? null;
    this.locked = Boolean(state.locked);
    this.poll = state.poll ? { ...state.poll, counts: [...(state.poll.counts || [])] } : null;
    this.closedPoll = state.last_poll
      ? { ...state.last_poll, counts: [...(state.last_poll.counts || [])] } : this.closedPoll;
    if (state.options) this.options = { ...this.options, ...state.options };
    this.timer = state.timer || null;
    if ("screens" in reply) this.screens = reply.screens || null;
    this.hands = [...(state.hands || [])];
    // state.annotations covers the current screen only: replace those, keep the rest.
    for (const [id, annotation] of this.annotations) {
      if (annotation.screen === this.screen) this.annotations.delete(id);
    }
    for (const annotation of state.annotations || []) {
      this.annotations.set(annotation.annotation_id, annotation);
    }
    this.participants = new Map((reply.participants || []).map((p) => [p.pid, p]));
  }

  /**
   * Fill in chat and annotations from a `history` reply (stored events, oldest first).
   * @param {{events: {offset: number, event: object}[]}} reply
   */
  loadHistory(reply) {
    // Merge, do not replace: a live chat event may have arrived after the server
    // read this history (offsets make the merge exact).
    const fromHistory = new Map();
    for (const { offset, event } of reply.events || []) {
      if (event.kind === "chat" && !event.erased) this._addChat(offset, event);
      else if (event.kind === "chat.remove") this._removeChat(event.message);
      else if (event.kind === "annotation.add" && !event.erased) {
        fromHistory.set(event.annotation_id, event);
      } else if (event.kind === "annotation.remove") fromHistory.delete(event.annotation_id);
      else if (event.kind === "annotation.clear") {
        for (const id of event.removed || []) fromHistory.delete(id);
      }
    }
    // Other screens from history; the current screen from the live state, which is exact.
    const merged = new Map();
    for (const [id, annotation] of fromHistory) {
      if (annotation.screen !== this.screen) merged.set(id, annotation);
    }
    for (const [id, annotation] of this.annotations) {
      if (annotation.screen === this.screen) merged.set(id, annotation);
    }
    this.annotations = merged;
  }

  _addChat(offset, event) {
    if (event.withheld) return false; // someone else's private question: nothing to show
    if (typeof offset === "number") {
      if (this._chatOffsets.has(offset)) return false;
      this._chatOffsets.add(offset);
    }
    this.chat.push({
      offset, by: event.by, text: event.text, at: event.at, to: event.to, removed: Boolean(event.removed),
    });
    this.chat.sort((a, b) => (a.offset ?? 0) - (b.offset ?? 0));
    return true;
  }

  /** A trainer removed the message at `offset`: keep its place, drop its text. */
  _removeChat(offset) {
    const message = this.chat.find((m) => m.offset === offset);
    if (message) {
      message.removed = true;
      message.text = "";
    }
  }

  /**
   * Apply one `event` frame. Returns the event, so the page can announce it.
   * @param {object} frame
   */
  applyEvent(frame) {
    const event = frame.event || {};
    if (frame.epoch && this.epoch === null) this.epoch = frame.epoch;
    switch (event.kind) {
      case "screen.navigate":
        this.screen = event.screen;
        break;
      case "screen.lock":
        this.locked = Boolean(event.locked);
        break;
      case "annotation.add":
        if (!event.erased) this.annotations.set(event.annotation_id, event);
        break;
      case "annotation.remove":
        this.annotations.delete(event.annotation_id);
        break;
      case "annotation.clear":
        for (const id of event.removed || []) this.annotations.delete(id);
        break;
      case "session.options":
        for (const key of ["student_marks", "student_pointers"]) {
          if (typeof event[key] === "boolean") this.options[key] = event[key];
        }
        break;
      case "timer.start":
        this.timer = { seconds: event.seconds, ends_at: event.ends_at };
        break;
      case "timer.stop":
        this.timer = null;
        break;
      case "hand.raise":
        if (event.by && !this.hands.some((p) => p.pid === event.by.pid)) this.hands.push(event.by);
        break;
      case "hand.lower": {
        const pid = event.participant ? event.participant.pid : event.by && event.by.pid;
        this.hands = this.hands.filter((p) => p.pid !== pid);
        break;
      }
      case "chat":
        if (!event.erased) this._addChat(frame.offset, event);
        break;
      case "chat.remove":
        this._removeChat(event.message);
        break;
      case "poll.open":
        this.closedPoll = null;
        this.poll = {
          poll: event.poll,
          question: event.question,
          options: [...event.options],
          counts: event.options.map(() => 0),
          answers: [],
          hidden: Boolean(event.hide_results),
        };
        break;
      case "poll.answer":
        if (this.poll && this.poll.poll === event.poll && !event.erased) {
          this.poll.counts = [...event.counts];
          const answers = (this.poll.answers || []).filter((a) => a.participant.pid !== event.by.pid);
          answers.push({ participant: event.by, option: event.option });
          this.poll.answers = answers;
        }
        break;
      case "poll.tally":
        if (this.poll && this.poll.poll === event.poll && Array.isArray(event.counts)) {
          this.poll.counts = [...event.counts];
        }
        break;
      case "poll.close":
        if (this.poll && this.poll.poll === event.poll) {
          this.closedPoll = {
            ...this.poll,
            counts: Array.isArray(event.counts) ? [...event.counts] : this.poll.counts,
            hidden: Boolean(event.hidden),
          };
        }
        this.poll = null;
        break;
      case "poll.reveal":
        for (const poll of [this.poll, this.closedPoll]) {
          if (poll && poll.poll === event.poll) {
            poll.hidden = false;
            poll.revealed = true;
            if (Array.isArray(event.counts)) poll.counts = [...event.counts];
          }
        }
        break;
      case "session.ended":
        this.ended = true;
        break;
      default:
        break;
    }
    return event;
  }

  /** @param {object} participant */
  presenceJoin(participant) {
    this.participants.set(participant.pid, participant);
  }

  /** @param {object} participant */
  presenceLeave(participant) {
    this.participants.delete(participant.pid);
  }

  /** Annotations on a screen, oldest first. */
  annotationsOn(screen) {
    return [...this.annotations.values()].filter((a) => a.screen === screen);
  }

  /** This user's marks on a screen, oldest first. */
  myAnnotationsOn(screen) {
    const pid = this.me && this.me.pid;
    return this.annotationsOn(screen).filter((a) => a.by && a.by.pid === pid);
  }

  /** Whether this user's hand is up. */
  get handRaised() {
    return Boolean(this.me && this.hands.some((p) => p.pid === this.me.pid));
  }
}
