/**
 * The course a session shows: the customer's own screens from the roster
 * (`joined.screens`: `{id, title?, url?}`), or the built-in demo course when the
 * roster names none. One object answers "which screens, in which order, what is
 * this one called and what does it show" for every page, so the trainer's list,
 * the student's next/previous and the dashboard agree.
 *
 * @module screens
 */

import { COURSE, findScreen } from "./course.js";

/**
 * @typedef {{id: string, title: string, url: string | null, body: string | null,
 *   quiz: object | null}} ShownScreen what a page shows of one screen, in one language
 */

export class Course {
  constructor() {
    /** @type {{id: string, title?: string, url?: string}[] | null} the roster's list */
    this.roster = null;
  }

  /**
   * Take the screens of a `joined` (or `cohort`) reply; null keeps the demo course.
   * @param {unknown} screens
   * @returns {boolean} whether the list changed
   */
  setRoster(screens) {
    const next = Array.isArray(screens) && screens.length
      ? screens.filter((s) => s && typeof s.id === "string")
        .map((s) => ({ id: s.id, title: s.title, url: s.url }))
      : null;
    const changed = JSON.stringify(next) !== JSON.stringify(this.roster);
    this.roster = next;
    return changed;
  }

  /** Screen ids in course order. */
  ids() {
    return this.roster ? this.roster.map((s) => s.id) : COURSE.screens.map((s) => s.id);
  }

  /** Position in the course (0-based), or -1 for a screen that is not in it. */
  index(id) {
    return id ? this.ids().indexOf(id) : -1;
  }

  /**
   * What to show of a screen in `language`; an unknown id still gets a title (its id).
   * @param {string | null} id
   * @param {"nl" | "en"} language
   * @returns {ShownScreen | null}
   */
  find(id, language) {
    if (!id) return null;
    const listed = this.roster ? this.roster.find((s) => s.id === id) : null;
    const builtIn = findScreen(id);
    if (this.roster && !listed && !builtIn) return null;
    const url = listed && typeof listed.url === "string" ? listed.url : null;
    const title = (listed && listed.title) || (builtIn ? builtIn.title[language] : id);
    return {
      id,
      title,
      url,
      body: !url && builtIn ? builtIn.body[language] : null,
      quiz: !url && builtIn && builtIn.quiz ? builtIn.quiz : null,
    };
  }

  /** A screen's title; an unknown id is shown as itself. */
  title(id, language) {
    const screen = this.find(id, language);
    return screen ? screen.title : id || "";
  }
}
