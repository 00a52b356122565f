/**
 * The built-in demo course: a title and a paragraph per screen, so that a demo
 * works without a content server. A tenant's roster replaces it with the
 * customer's own screens (`joined.screens`, see `screens.js`); a roster screen
 * that names one of these ids without a `url` still shows this text.
 *
 * @module course
 */

/**
 * @typedef {{nl: string, en: string}} Text
 * @typedef {{id: string, title: Text, body: Text, quiz?: {question: Text, options: Text[], correct: number}}} Screen
 */

/** @type {{id: string, title: Text, screens: Screen[]}} */
export const COURSE = Object.freeze({
  id: "feedback-basics",
  title: { nl: "Feedback geven die werkt", en: "Feedback that works" },
  screens: [
    {
      id: "intro",
      title: { nl: "Welkom", en: "Welcome" },
      body: {
        nl: "In deze les oefen je met feedback geven die de ander echt verder helpt. We doen dat in zes korte stappen.",
        en: "In this lesson you practise giving feedback that truly helps the other person. We do it in six short steps.",
      },
    },
    {
      id: "goals",
      title: { nl: "Leerdoelen", en: "Learning goals" },
      body: {
        nl: "Na deze les kun je een waarneming onderscheiden van een oordeel, het effect van gedrag benoemen en afsluiten met een open vraag.",
        en: "After this lesson you can tell an observation from a judgement, name the effect of behaviour, and close with an open question.",
      },
    },
    {
      id: "model",
      title: { nl: "Het model: waarneming, effect, vraag", en: "The model: observation, effect, question" },
      body: {
        nl: "Begin met wat je zag of hoorde, zonder oordeel. Vertel daarna welk effect het had op jou of op het team. Sluit af met een open vraag, zodat de ander kan reageren.",
        en: "Start with what you saw or heard, without judging. Then say what effect it had on you or the team. Close with an open question so the other person can respond.",
      },
    },
    {
      id: "example",
      title: { nl: "Een voorbeeld", en: "An example" },
      body: {
        nl: "“Ik zag dat het rapport twee dagen na de deadline binnenkwam. Daardoor kon ik de klant niet op tijd informeren. Hoe kunnen we dat de volgende keer voorkomen?”",
        en: "“I saw that the report came in two days after the deadline. Because of that I could not inform the client in time. How can we prevent that next time?”",
      },
    },
    {
      id: "practice",
      title: { nl: "Oefening", en: "Practice" },
      body: {
        nl: "Test jezelf: welke zin is een waarneming en geen oordeel?",
        en: "Test yourself: which sentence is an observation rather than a judgement?",
      },
      quiz: {
        question: {
          nl: "Welke zin is een waarneming?",
          en: "Which sentence is an observation?",
        },
        options: [
          { nl: "Je bent altijd te laat.", en: "You are always late." },
          { nl: "Je kwam vandaag om 9.20 uur binnen.", en: "You came in at 9:20 today." },
          { nl: "Je vindt dit werk niet belangrijk.", en: "You don't think this work matters." },
        ],
        correct: 1,
      },
    },
    {
      id: "wrap-up",
      title: { nl: "Afronding", en: "Wrap-up" },
      body: {
        nl: "Kies één situatie van deze week waarin je feedback wilt geven en schrijf je eerste zin op volgens het model.",
        en: "Pick one situation this week in which you want to give feedback, and write down your first sentence using the model.",
      },
    },
  ],
});

/** The built-in screen ids in course order (what the demo roster's `screens` lists). */
export const SCREEN_IDS = COURSE.screens.map((screen) => screen.id);

/**
 * @param {string | null} id
 * @returns {Screen | null} the demo course's screen, or null for an unknown id
 */
export function findScreen(id) {
  return COURSE.screens.find((screen) => screen.id === id) || null;
}
