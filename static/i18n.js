/**
 * Dutch and English strings for the pages, and the language switch.
 *
 * Dutch is the default (the customers are Dutch training companies); `?lang=en`
 * or the language button switches to English. The switch updates
 * `<html lang>`, so screen readers pronounce the text in the right language,
 * and the `lang` query parameter, so a reload keeps the choice.
 *
 * Static text in the HTML carries `data-i18n="key"` (its text) or
 * `data-i18n-attr="attr:key;attr2:key2"` (attributes such as `aria-label`,
 * `placeholder`, `title`); {@link applyI18n} fills both in.
 *
 * @module i18n
 */

/** @typedef {"nl" | "en"} Lang */

export const LANGS = /** @type {const} */ (["nl", "en"]);

const STRINGS = {
  nl: {
    "app.name": "Klaslokaal",
    "common.skip": "Naar de inhoud",
    "common.lang_button": "English",
    "common.lang_button_label": "Switch to English",
    "common.session": "Sessie: {session}",
    "common.you": "jij",
    "common.close": "Sluiten",
    "status.connecting": "Verbinden…",
    "status.open": "Verbonden",
    "status.reconnecting": "Verbinding verbroken. Opnieuw verbinden over {seconds} s…",
    "status.reconnecting_now": "Opnieuw verbinden…",
    "status.recovered": "Verbinding hersteld. {count} gemiste gebeurtenissen opgehaald.",
    "status.recovered.one": "Verbinding hersteld. 1 gemiste gebeurtenis opgehaald.",
    "status.recovered_none": "Verbinding hersteld. Je hebt niets gemist.",
    "status.resynced": "Verbinding hersteld. De les is opnieuw geladen.",
    "status.closed": "Niet verbonden.",
    "error.no_token": "Deze pagina heeft een persoonlijke link nodig. Open de link die je van je opleider hebt gekregen.",
    "error.unauthorized": "Je link is niet (meer) geldig. Vraag je opleider om een nieuwe link.",
    "error.wrong_role": "Deze link is niet voor deze pagina bedoeld.",
    "error.no_session": "Er is geen les gekozen en je link geeft toegang tot meer dan één les.",
    "error.forbidden_session": "Je hebt geen toegang tot deze les.",
    "error.ended": "Deze les is afgelopen.",
    "error.disconnected": "De verbinding is door de server verbroken: {reason}",
    "error.command": "Dat lukte niet: {message}",
    "error.rate_limited": "Even rustig aan: probeer het zo nog eens.",
    "error.unavailable": "De server kan dit nu even niet doen. Probeer het zo nog eens.",
    "error.connection": "Geen verbinding met de server. Probeer het zo nog eens.",
    "error.forbidden": "Dat is voor jouw rol niet toegestaan.",
    "role.trainer": "trainer",
    "role.student": "deelnemer",
    "role.planner": "planner",
    "role.content_manager": "contentbeheerder",
    "role.server": "systeem",
    "person.someone": "iemand",
    "person.server": "Systeem",
    "person.erased": "verwijderde gebruiker",
    "person.student_anonymous": "een deelnemer",
    "person.trainer_anonymous": "de trainer",
    "screen.position": "Scherm {n} van {total}",
    "screen.unknown": "Scherm {id}",
    "screen.waiting": "Wachten tot de trainer begint…",
    "screen.trainer_waiting": "Kies een scherm om te beginnen: Volgende, of een scherm uit de lijst.",
    "screen.locked": "Vergrendeld door de trainer",
    "screen.following": "Je volgt de trainer.",
    "screen.nav": "Schermnavigatie",
    "screen.prev": "Vorige",
    "screen.next": "Volgende",
    "screen.follow": "Volg de trainer",
    "screen.annotations": "{count} markeringen op dit scherm.",
    "screen.annotations.one": "1 markering op dit scherm.",
    "screen.stage": "Lesscherm",
    "announce.navigated": "De trainer ging naar “{title}”.",
    "announce.locked": "De trainer heeft de schermen vergrendeld.",
    "announce.unlocked": "De trainer heeft de schermen ontgrendeld.",
    "announce.poll_open": "Nieuwe peiling: {question}",
    "announce.poll_closed": "De peiling is gesloten.",
    "announce.hand_raised": "{name} stak een hand op.",
    "announce.hand_lowered_you": "Je hand is omlaag gedaan.",
    "progress.heading": "Mijn voortgang",
    "progress.complete": "Markeer dit scherm als klaar",
    "progress.completed": "Klaar ✓",
    "progress.summary": "{done} van {total} schermen klaar",
    "progress.score": "Score: {score}",
    "quiz.check": "Controleer antwoord",
    "quiz.correct": "Goed! Dat is een waarneming.",
    "quiz.wrong": "Nog niet: dat is een oordeel. Probeer het nog eens.",
    "quiz.choose": "Kies eerst een antwoord.",
    "hand.heading": "Hand opsteken",
    "hand.raise": "✋ Hand opsteken",
    "hand.lower": "Hand omlaag",
    "hand.raised_note": "Je hand is opgestoken. De trainer ziet je in de rij.",
    "hand.queue": "Opgestoken handen",
    "hand.queue_empty": "Geen opgestoken handen.",
    "hand.lower_for": "Hand omlaag voor {name}",
    "hand.raised_label": "hand opgestoken",
    "poll.heading": "Peiling",
    "poll.none": "Er is geen peiling open.",
    "poll.answer_hint": "Kies een antwoord. Je kunt het nog wijzigen zolang de peiling open is.",
    "poll.your_answer": "Jouw antwoord: {option}",
    "poll.votes": "{count} stemmen",
    "poll.votes.one": "1 stem",
    "poll.results": "Uitslag",
    "poll.final": "Uitslag van “{question}”",
    "poll.question": "Vraag",
    "poll.options": "Antwoorden (één per regel, 2 tot 10)",
    "poll.open": "Peiling openen",
    "poll.close": "Peiling sluiten",
    "poll.answers": "Antwoorden per deelnemer",
    "poll.no_answers": "Nog geen antwoorden.",
    "poll.invalid": "Geef een vraag en 2 tot 10 antwoorden.",
    "poll.default_question": "Is het model duidelijk?",
    "poll.default_options": "Ja\nEen beetje\nNee",
    "reactions.heading": "Reacties",
    "reactions.thumbs": "Duim omhoog",
    "reactions.clap": "Applaus",
    "reactions.confused": "Ik snap het niet",
    "reactions.slower": "Graag langzamer",
    "reactions.from": "{name}: {emoji}",
    "chat.heading": "Chat",
    "chat.label": "Bericht",
    "chat.send": "Versturen",
    "chat.empty": "Nog geen berichten.",
    "chat.log": "Chatberichten",
    "people.heading": "Aanwezig",
    "people.count": "{count} aanwezig",
    "video.heading": "Video",
    "video.checking": "Video controleren…",
    "video.available": "Video is beschikbaar.",
    "video.unavailable": "Video is niet beschikbaar voor deze les. Al het andere werkt gewoon.",
    "video.failed": "Video starten lukte niet. Al het andere werkt gewoon.",
    "video.join": "Deelnemen aan video",
    "video.leave": "Video verlaten",
    "video.joined": "Je bent in de video.",
    "video.retry": "Opnieuw proberen",
    "video.loading": "Video laden…",
    "student.title": "Les – deelnemer",
    "trainer.title": "Les – trainer",
    "trainer.console": "Trainerconsole",
    "trainer.screens": "Schermen",
    "trainer.lock": "Schermen vergrendelen",
    "trainer.locked": "Vergrendeld: deelnemers volgen jou",
    "trainer.locked_badge": "Vergrendeld",
    "trainer.unlocked": "Ontgrendeld: deelnemers mogen rondkijken",
    "trainer.clear_annotations": "Alle markeringen op dit scherm wissen",
    "trainer.dashboard": "Voortgang van de groep openen",
    "trainer.pointer_hint": "Waar je op het scherm wijst, zien de deelnemers.",
    "trainer.go_to": "Ga naar {title}",
    "dashboard.title": "Voortgang van de groep",
    "dashboard.updated": "Bijgewerkt om {time}",
    "dashboard.help_heading": "Hulp nodig",
    "dashboard.help_none": "Niemand heeft nu hulp nodig.",
    "dashboard.help_only": "Toon alleen wie hulp nodig heeft",
    "dashboard.table": "Voortgang per deelnemer",
    "dashboard.sort_by": "Sorteer op {column}",
    "dashboard.col.student": "Deelnemer",
    "dashboard.col.online": "Online",
    "dashboard.col.screen": "Scherm",
    "dashboard.col.behind": "Achter",
    "dashboard.col.activity": "Activiteit",
    "dashboard.col.hand": "Hand",
    "dashboard.col.completed": "Klaar",
    "dashboard.col.score": "Score",
    "dashboard.col.help": "Hulp",
    "dashboard.online": "online",
    "dashboard.offline": "offline",
    "dashboard.idle": "inactief",
    "dashboard.active": "actief",
    "dashboard.never": "nog niet gestart",
    "dashboard.behind_n": "{n} achter",
    "dashboard.level": "bij",
    "dashboard.hand_up": "✋ hand op",
    "dashboard.no": "–",
    "dashboard.needs_help": "hulp nodig",
    "dashboard.reason.hand": "hand opgestoken",
    "dashboard.reason.behind": "{n} schermen achter",
    "dashboard.reason.idle": "inactief",
    "dashboard.pseudonym": "Deelnemer {n}",
    "dashboard.trainer_screen": "De trainer is bij: {title}",
    "dashboard.empty": "Nog geen deelnemers in deze les.",
    "dashboard.students": "{count} deelnemers, {online} online",
    "dashboard.students.one": "1 deelnemer, {online} online",
    "index.title": "Klaslokaal",
    "index.intro": "Open de persoonlijke link die je van je opleider hebt gekregen. Zonder link kun je hier niet deelnemen.",
    "index.pages": "Pagina's",
    "index.student": "Deelnemer",
    "index.trainer": "Trainer",
    "index.dashboard": "Voortgang van de groep",
    "announce.private_question": "Privévraag van {name}.",
    "announce.timer": "De trainer startte een timer van {minutes} minuten.",
    "announce.trainer_elsewhere": "De trainer ging naar scherm {n}: “{title}”. Je kunt volgen.",
    "announce.marks_on": "Je mag nu op het scherm markeren.",
    "announce.marks_off": "De trainer heeft markeren voor deelnemers uitgezet.",
    "announce.chat": "Nieuw bericht van {name}.",
    "chat.private": "Alleen aan de trainer (privévraag)",
    "chat.private_badge": "privé",
    "chat.remove": "Verwijderen",
    "chat.remove_from": "Bericht van {name} verwijderen",
    "chat.removed": "Dit bericht is verwijderd door de trainer.",
    "colour.red": "Rood",
    "colour.blue": "Blauw",
    "colour.green": "Groen",
    "colour.orange": "Oranje",
    "colour.purple": "Paars",
    "colour.black": "Zwart",
    "mark.heading": "Markeren",
    "mark.tools": "Gereedschap",
    "mark.tool.none": "Niets (de inhoud gebruiken)",
    "mark.tool.circle": "Cirkel",
    "mark.tool.pen": "Tekenen",
    "mark.tool.text": "Tekst",
    "mark.colour": "Kleur",
    "mark.text_label": "Tekst van de notitie",
    "mark.text_missing": "Typ eerst de tekst van je notitie.",
    "mark.undo": "Laatste markering weghalen",
    "mark.clear_mine": "Mijn markeringen wissen",
    "mark.off": "De trainer heeft markeren voor deelnemers uitgezet.",
    "mark.pointer_shared": "Waar je op het scherm wijst, zien de anderen met je naam.",
    "person.planner_anonymous": "een planner",
    "person.content_manager_anonymous": "een contentbeheerder",
    "poll.closed_note": "Deze peiling is gesloten.",
    "poll.everyone_answered": "Iedereen heeft geantwoord.",
    "poll.hide": "Uitslag verbergen voor deelnemers tot ik die toon",
    "poll.new": "Nieuwe peiling",
    "poll.progress": "{answered} van {total} aanwezige deelnemers hebben geantwoord.",
    "poll.results_hidden": "De uitslag is nog verborgen. De trainer laat die zien.",
    "poll.reveal": "Uitslag aan deelnemers tonen",
    "poll.waiting": "Nog niet geantwoord",
    "screen.trainer_is_on": "De trainer is bij scherm {n}: “{title}”.",
    "screen.trainer_is_on_other": "De trainer is bij “{title}”.",
    "screen.waiting_title": "Les",
    "hand.lower_mine": "Hand omlaag doen",
    "timer.heading": "Lestimer",
    "timer.minutes": "Minuten",
    "timer.start": "Timer starten",
    "timer.stop": "Timer stoppen",
    "timer.left": "⏱ Nog {time}",
    "timer.done": "⏱ De tijd is om",
    "timer.invalid": "Kies 1 tot 240 minuten.",
    "trainer.clear_person": "Wissen",
    "trainer.clear_person_label": "Markeringen van één persoon op dit scherm",
    "trainer.end": "Les beëindigen",
    "trainer.end_cancel": "Annuleren",
    "trainer.end_confirm_title": "Les beëindigen?",
    "trainer.end_confirm_text": "Alle deelnemers verlaten de les en niemand kan meer deelnemen. Dit kan niet ongedaan worden gemaakt.",
    "trainer.end_yes": "Ja, les beëindigen",
    "trainer.go_to_with": "Ga naar {title} ({people}: {names})",
    "trainer.students_here": "{count} deelnemers hier",
    "trainer.students_here.one": "1 deelnemer hier",
    "trainer.opt_student_marks": "Deelnemers mogen markeren",
    "trainer.opt_student_pointers": "Aanwijzers van deelnemers tonen",
    "trainer.unlock": "Schermen ontgrendelen",
  },
  en: {
    "app.name": "Classroom",
    "common.skip": "Skip to content",
    "common.lang_button": "Nederlands",
    "common.lang_button_label": "Schakel naar Nederlands",
    "common.session": "Session: {session}",
    "common.you": "you",
    "common.close": "Close",
    "status.connecting": "Connecting…",
    "status.open": "Connected",
    "status.reconnecting": "Connection lost. Reconnecting in {seconds} s…",
    "status.reconnecting_now": "Reconnecting…",
    "status.recovered": "Reconnected. {count} missed events recovered.",
    "status.recovered.one": "Reconnected. 1 missed event recovered.",
    "status.recovered_none": "Reconnected. You missed nothing.",
    "status.resynced": "Reconnected. The lesson was reloaded.",
    "status.closed": "Not connected.",
    "error.no_token": "This page needs a personal link. Open the link your training provider sent you.",
    "error.unauthorized": "Your link is not valid (any more). Ask your training provider for a new one.",
    "error.wrong_role": "This link is not meant for this page.",
    "error.no_session": "No lesson was chosen and your link gives access to more than one.",
    "error.forbidden_session": "You have no access to this lesson.",
    "error.ended": "This lesson has ended.",
    "error.disconnected": "The server ended the connection: {reason}",
    "error.command": "That did not work: {message}",
    "error.rate_limited": "Slow down a little: try again in a moment.",
    "error.unavailable": "The server cannot do this right now. Try again in a moment.",
    "error.connection": "No connection to the server. Try again in a moment.",
    "error.forbidden": "Your role may not do that.",
    "role.trainer": "trainer",
    "role.student": "student",
    "role.planner": "planner",
    "role.content_manager": "content manager",
    "role.server": "system",
    "person.someone": "someone",
    "person.server": "System",
    "person.erased": "deleted user",
    "person.student_anonymous": "a student",
    "person.trainer_anonymous": "the trainer",
    "screen.position": "Screen {n} of {total}",
    "screen.unknown": "Screen {id}",
    "screen.waiting": "Waiting for the trainer to start…",
    "screen.trainer_waiting": "Choose a screen to start: Next, or a screen from the list.",
    "screen.locked": "Locked by the trainer",
    "screen.following": "You are following the trainer.",
    "screen.nav": "Screen navigation",
    "screen.prev": "Previous",
    "screen.next": "Next",
    "screen.follow": "Follow the trainer",
    "screen.annotations": "{count} marks on this screen.",
    "screen.annotations.one": "1 mark on this screen.",
    "screen.stage": "Lesson screen",
    "announce.navigated": "The trainer went to “{title}”.",
    "announce.locked": "The trainer locked the screens.",
    "announce.unlocked": "The trainer unlocked the screens.",
    "announce.poll_open": "New poll: {question}",
    "announce.poll_closed": "The poll is closed.",
    "announce.hand_raised": "{name} raised a hand.",
    "announce.hand_lowered_you": "Your hand was lowered.",
    "progress.heading": "My progress",
    "progress.complete": "Mark this screen as done",
    "progress.completed": "Done ✓",
    "progress.summary": "{done} of {total} screens done",
    "progress.score": "Score: {score}",
    "quiz.check": "Check answer",
    "quiz.correct": "Right! That is an observation.",
    "quiz.wrong": "Not yet: that is a judgement. Try again.",
    "quiz.choose": "Choose an answer first.",
    "hand.heading": "Raise your hand",
    "hand.raise": "✋ Raise hand",
    "hand.lower": "Lower hand",
    "hand.raised_note": "Your hand is raised. The trainer sees you in the queue.",
    "hand.queue": "Raised hands",
    "hand.queue_empty": "No raised hands.",
    "hand.lower_for": "Lower hand of {name}",
    "hand.raised_label": "hand raised",
    "poll.heading": "Poll",
    "poll.none": "No poll is open.",
    "poll.answer_hint": "Choose an answer. You can change it while the poll is open.",
    "poll.your_answer": "Your answer: {option}",
    "poll.votes": "{count} votes",
    "poll.votes.one": "1 vote",
    "poll.results": "Results",
    "poll.final": "Results of “{question}”",
    "poll.question": "Question",
    "poll.options": "Answers (one per line, 2 to 10)",
    "poll.open": "Open poll",
    "poll.close": "Close poll",
    "poll.answers": "Answers per student",
    "poll.no_answers": "No answers yet.",
    "poll.invalid": "Give a question and 2 to 10 answers.",
    "poll.default_question": "Is the model clear?",
    "poll.default_options": "Yes\nA little\nNo",
    "reactions.heading": "Reactions",
    "reactions.thumbs": "Thumbs up",
    "reactions.clap": "Applause",
    "reactions.confused": "I don't get it",
    "reactions.slower": "Slower, please",
    "reactions.from": "{name}: {emoji}",
    "chat.heading": "Chat",
    "chat.label": "Message",
    "chat.send": "Send",
    "chat.empty": "No messages yet.",
    "chat.log": "Chat messages",
    "people.heading": "Present",
    "people.count": "{count} present",
    "video.heading": "Video",
    "video.checking": "Checking video…",
    "video.available": "Video is available.",
    "video.unavailable": "Video is not available for this lesson. Everything else works as usual.",
    "video.failed": "Video could not start. Everything else works as usual.",
    "video.join": "Join video",
    "video.leave": "Leave video",
    "video.joined": "You are in the video.",
    "video.retry": "Try again",
    "video.loading": "Loading video…",
    "student.title": "Lesson – student",
    "trainer.title": "Lesson – trainer",
    "trainer.console": "Trainer console",
    "trainer.screens": "Screens",
    "trainer.lock": "Lock screens",
    "trainer.locked": "Locked: students follow you",
    "trainer.locked_badge": "Locked",
    "trainer.unlocked": "Unlocked: students may look around",
    "trainer.clear_annotations": "Clear all marks on this screen",
    "trainer.dashboard": "Open group progress",
    "trainer.pointer_hint": "Where you point on the screen, the students see it.",
    "trainer.go_to": "Go to {title}",
    "dashboard.title": "Group progress",
    "dashboard.updated": "Updated at {time}",
    "dashboard.help_heading": "Needs help",
    "dashboard.help_none": "Nobody needs help right now.",
    "dashboard.help_only": "Show only who needs help",
    "dashboard.table": "Progress per student",
    "dashboard.sort_by": "Sort by {column}",
    "dashboard.col.student": "Student",
    "dashboard.col.online": "Online",
    "dashboard.col.screen": "Screen",
    "dashboard.col.behind": "Behind",
    "dashboard.col.activity": "Activity",
    "dashboard.col.hand": "Hand",
    "dashboard.col.completed": "Done",
    "dashboard.col.score": "Score",
    "dashboard.col.help": "Help",
    "dashboard.online": "online",
    "dashboard.offline": "offline",
    "dashboard.idle": "idle",
    "dashboard.active": "active",
    "dashboard.never": "not started",
    "dashboard.behind_n": "{n} behind",
    "dashboard.level": "on track",
    "dashboard.hand_up": "✋ hand up",
    "dashboard.no": "–",
    "dashboard.needs_help": "needs help",
    "dashboard.reason.hand": "hand raised",
    "dashboard.reason.behind": "{n} screens behind",
    "dashboard.reason.idle": "idle",
    "dashboard.pseudonym": "Student {n}",
    "dashboard.trainer_screen": "The trainer is at: {title}",
    "dashboard.empty": "No students in this lesson yet.",
    "dashboard.students": "{count} students, {online} online",
    "dashboard.students.one": "1 student, {online} online",
    "index.title": "Classroom",
    "index.intro": "Open the personal link your training provider sent you. Without a link you cannot take part here.",
    "index.pages": "Pages",
    "index.student": "Student",
    "index.trainer": "Trainer",
    "index.dashboard": "Group progress",
    "announce.private_question": "Private question from {name}.",
    "announce.timer": "The trainer started a {minutes} minute timer.",
    "announce.trainer_elsewhere": "The trainer went to screen {n}: “{title}”. You can follow.",
    "announce.marks_on": "You may now mark the screen.",
    "announce.marks_off": "The trainer switched marking off for students.",
    "announce.chat": "New message from {name}.",
    "chat.private": "Only to the trainer (private question)",
    "chat.private_badge": "private",
    "chat.remove": "Remove",
    "chat.remove_from": "Remove message from {name}",
    "chat.removed": "This message was removed by the trainer.",
    "colour.red": "Red",
    "colour.blue": "Blue",
    "colour.green": "Green",
    "colour.orange": "Orange",
    "colour.purple": "Purple",
    "colour.black": "Black",
    "mark.heading": "Marking",
    "mark.tools": "Tool",
    "mark.tool.none": "None (use the content)",
    "mark.tool.circle": "Circle",
    "mark.tool.pen": "Draw",
    "mark.tool.text": "Text",
    "mark.colour": "Colour",
    "mark.text_label": "Text of the note",
    "mark.text_missing": "Type the text of your note first.",
    "mark.undo": "Remove my last mark",
    "mark.clear_mine": "Clear my marks",
    "mark.off": "The trainer switched marking off for students.",
    "mark.pointer_shared": "Where you point on the screen, the others see with your name.",
    "person.planner_anonymous": "a planner",
    "person.content_manager_anonymous": "a content manager",
    "poll.closed_note": "This poll is closed.",
    "poll.everyone_answered": "Everyone has answered.",
    "poll.hide": "Hide results from students until I show them",
    "poll.new": "New poll",
    "poll.progress": "{answered} of {total} students present have answered.",
    "poll.results_hidden": "The results are hidden for now. The trainer will show them.",
    "poll.reveal": "Show results to students",
    "poll.waiting": "Not answered yet",
    "screen.trainer_is_on": "The trainer is on screen {n}: “{title}”.",
    "screen.trainer_is_on_other": "The trainer is on “{title}”.",
    "screen.waiting_title": "Lesson",
    "hand.lower_mine": "Lower my hand",
    "timer.heading": "Lesson timer",
    "timer.minutes": "Minutes",
    "timer.start": "Start timer",
    "timer.stop": "Stop timer",
    "timer.left": "⏱ {time} left",
    "timer.done": "⏱ Time is up",
    "timer.invalid": "Choose 1 to 240 minutes.",
    "trainer.clear_person": "Clear",
    "trainer.clear_person_label": "One person's marks on this screen",
    "trainer.end": "End lesson",
    "trainer.end_cancel": "Cancel",
    "trainer.end_confirm_title": "End the lesson?",
    "trainer.end_confirm_text": "All students leave the lesson and nobody can join any more. This cannot be undone.",
    "trainer.end_yes": "Yes, end the lesson",
    "trainer.go_to_with": "Go to {title} ({people}: {names})",
    "trainer.students_here": "{count} students here",
    "trainer.students_here.one": "1 student here",
    "trainer.opt_student_marks": "Students may mark",
    "trainer.opt_student_pointers": "Show students' pointers",
    "trainer.unlock": "Unlock screens",
  },
};

/** @type {Lang} */
let current = initialLang();
const listeners = new Set();

/** @returns {Lang} `?lang=` when it names a known language, else Dutch. */
function initialLang() {
  const asked = new URLSearchParams(globalThis.location?.search || "").get("lang");
  return LANGS.includes(asked) ? asked : "nl";
}

/** @returns {Lang} */
export function lang() {
  return current;
}

/**
 * A string in the current language, with `{name}` placeholders filled in.
 * A missing key shows the key itself, so a gap is visible rather than blank.
 * @param {string} key
 * @param {Record<string, string | number>} [params]
 */
export function t(key, params = {}) {
  const template = STRINGS[current][key] ?? STRINGS.nl[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (match, name) =>
    name in params ? String(params[name]) : match);
}

/**
 * Like {@link t} for a count: `key.one` when the count is 1 (both languages need
 * only that distinction), else `key`, with `{count}` filled in.
 * @param {string} key
 * @param {number} count
 * @param {Record<string, string | number>} [params]
 */
export function tn(key, count, params = {}) {
  const one = `${key}.one`;
  const useOne = count === 1 && (one in STRINGS[current] || one in STRINGS.nl);
  return t(useOne ? one : key, { count, ...params });
}

/**
 * Fill in `data-i18n` texts and `data-i18n-attr` attributes under `root`.
 * @param {ParentNode} [root]
 */
export function applyI18n(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of element.dataset.i18nAttr.split(";")) {
      const [attribute, key] = pair.split(":").map((part) => part.trim());
      if (attribute && key) element.setAttribute(attribute, t(key));
    }
  }
  const title = document.querySelector("title[data-i18n]");
  if (title) document.title = title.textContent;
  // The toggle names the *other* language, in that language: mark it so.
  const toggle = document.getElementById("lang-toggle");
  if (toggle) toggle.lang = current === "nl" ? "en" : "nl";
}

/**
 * Switch the language: texts, `<html lang>`, and `?lang=` in the address bar.
 * @param {Lang} next
 */
export function setLang(next) {
  if (!LANGS.includes(next)) return;
  current = next;
  document.documentElement.lang = next;
  const url = new URL(globalThis.location.href);
  if (next === "nl") url.searchParams.delete("lang");
  else url.searchParams.set("lang", next);
  url.hash = "";
  history.replaceState(history.state, "", url.pathname + url.search);
  applyI18n();
  for (const listener of listeners) listener(next);
}

/**
 * Call `listener` after every language switch (pages re-render their dynamic parts).
 * @param {(lang: Lang) => void} listener
 */
export function onLangChange(listener) {
  listeners.add(listener);
}

/**
 * Wire a button that toggles between Dutch and English, and apply the initial language.
 * @param {HTMLButtonElement | null} button
 */
export function setupLanguage(button) {
  document.documentElement.lang = current;
  applyI18n();
  if (button) {
    button.addEventListener("click", () => setLang(current === "nl" ? "en" : "nl"));
  }
}

/** Time of day (hh:mm:ss) in the current language's format. */
export function formatTime(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString(current === "nl" ? "nl-NL" : "en-GB");
}
