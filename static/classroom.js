/**
 * The protocol client the pages use. Its one source is the npm package in
 * `clients/js/` (served under `/static/client/`), so the pages, mobile apps and
 * back ends run the same code. See clients/js/README.md.
 *
 * @module classroom
 */
export * from "./client/classroom.js";
