/** The landing page: only the language switch (the real pages need a personal link). */

import { setupLanguage } from "./i18n.js";

setupLanguage(document.getElementById("lang-toggle"));
