"""The surveys a new programme starts with, one per kind.

Texts ship in English and French. For any other language of the programme a
default carries the English text, so the template is complete from day one;
HR publishes a translated version when it wants one (``untranslated`` lists
the languages concerned).
"""

from __future__ import annotations

from collections.abc import Sequence

from libs.events.contexts.evaluation import Question, QuestionKind, QuestionOption, SurveyKind

Texts = dict[str, str]  # language -> text, for the languages written here
FALLBACK = "en"

SCALE, SINGLE, MULTIPLE, FREE = (
    QuestionKind.SCALE,
    QuestionKind.SINGLE_CHOICE,
    QuestionKind.MULTIPLE_CHOICE,
    QuestionKind.FREE_TEXT,
)

# (question id, kind, text, required, options as (code, text))
Spec = tuple[str, QuestionKind, Texts, bool, Sequence[tuple[str, Texts]]]

TITLES: dict[SurveyKind, Texts] = {
    SurveyKind.DIGITAL_MATURITY: {"en": "Digital maturity", "fr": "Maturité digitale"},
    SurveyKind.SESSION_FEEDBACK: {"en": "Session feedback", "fr": "Retour sur la séance"},
    SurveyKind.CLOSING_SELF_ASSESSMENT: {"en": "Closing self-assessment", "fr": "Auto-évaluation finale"},
    SurveyKind.MENTOR_QUESTIONNAIRE: {"en": "What you learned as a mentor", "fr": "Ce que vous avez appris"},
}

THEMES: Sequence[tuple[str, Texts]] = (
    ("tools", {"en": "Collaborative tools", "fr": "Outils collaboratifs"}),
    ("data_ai", {"en": "Data and AI", "fr": "Données et IA"}),
    ("social_media", {"en": "Social media", "fr": "Réseaux sociaux"}),
    ("security", {"en": "Cybersecurity", "fr": "Cybersécurité"}),
)

SPECS: dict[SurveyKind, Sequence[Spec]] = {
    SurveyKind.DIGITAL_MATURITY: (
        ("tools", SCALE, {"en": "I use collaborative digital tools with ease.",
                          "fr": "J'utilise les outils numériques collaboratifs avec aisance."}, True, ()),
        ("data_ai", SCALE, {"en": "I understand what data and AI can do for my business.",
                            "fr": "Je comprends ce que les données et l'IA peuvent apporter à mon métier."}, True, ()),
        ("social_media", SCALE, {"en": "I know how social media serve the company.",
                                 "fr": "Je sais comment les réseaux sociaux servent l'entreprise."}, True, ()),
        ("security", SCALE, {"en": "I can judge the cybersecurity risks of my daily work.",
                             "fr": "Je sais évaluer les risques cyber de mon quotidien."}, True, ()),
        ("lead_digital", SCALE, {"en": "I feel able to lead a digital project.",
                                 "fr": "Je me sens capable de piloter un projet digital."}, True, ()),
    ),
    SurveyKind.SESSION_FEEDBACK: (
        ("useful", SCALE, {"en": "How useful was this session?", "fr": "Cette séance vous a-t-elle été utile ?"},
         True, ()),
        ("topics_covered", SINGLE, {"en": "Did you cover the planned topics?",
                                    "fr": "Avez-vous couvert les sujets prévus ?"}, True,
         (("yes", {"en": "Yes", "fr": "Oui"}), ("partly", {"en": "Partly", "fr": "En partie"}),
          ("no", {"en": "No", "fr": "Non"}))),
        ("comment", FREE, {"en": "Anything to add?", "fr": "Un commentaire ?"}, False, ()),
    ),
    SurveyKind.CLOSING_SELF_ASSESSMENT: (
        ("new_skills", SCALE, {"en": "I acquired new digital skills.",
                               "fr": "J'ai acquis de nouvelles compétences digitales."}, True, ()),
        ("apply_at_work", SCALE, {"en": "I apply what I learned in my work.",
                                  "fr": "J'applique ce que j'ai appris dans mon travail."}, True, ()),
        ("themes_progressed", MULTIPLE, {"en": "Where did you progress?", "fr": "Où avez-vous progressé ?"},
         False, THEMES),
        ("next_steps", FREE, {"en": "What will you do differently?", "fr": "Que ferez-vous autrement ?"},
         False, ()),
    ),
    SurveyKind.MENTOR_QUESTIONNAIRE: (
        ("businesses", SCALE, {"en": "I understand the company's businesses better.",
                               "fr": "Je comprends mieux les métiers de l'entreprise."}, True, ()),
        ("leaders", SCALE, {"en": "I understand the constraints of its leaders better.",
                            "fr": "Je comprends mieux les contraintes de ses dirigeants."}, True, ()),
        ("learned_about", MULTIPLE, {"en": "What did you learn about?", "fr": "Sur quoi avez-vous appris ?"},
         False, (("strategy", {"en": "Strategy", "fr": "Stratégie"}),
                 ("management", {"en": "Management", "fr": "Management"}),
                 ("culture", {"en": "Company culture", "fr": "Culture d'entreprise"}))),
        ("learned", FREE, {"en": "What did you learn about the company?",
                           "fr": "Qu'avez-vous appris sur l'entreprise ?"}, False, ()),
    ),
}


def localise(texts: Texts, languages: Sequence[str]) -> dict[str, str]:
    return {language: texts.get(language, texts[FALLBACK]) for language in languages}


def untranslated(languages: Sequence[str]) -> list[str]:
    written = set(TITLES[SurveyKind.DIGITAL_MATURITY])
    return [language for language in languages if language not in written]


def default_template(kind: SurveyKind, languages: Sequence[str]) -> tuple[dict[str, str], list[Question]]:
    """The default title and questions of ``kind`` in ``languages``."""
    questions = [
        Question(
            question_id=question_id,
            kind=question_kind,
            text=localise(text, languages),
            required=required,
            options=[QuestionOption(code=code, text=localise(label, languages)) for code, label in options],
        )
        for question_id, question_kind, text, required, options in SPECS[kind]
    ]
    return localise(TITLES[kind], languages), questions
