"""The words the fallback summarizer drops: greetings, politeness and, per language, request framing.

They are data, kept apart from the summarizer so that supporting another language means adding a table
here. Nothing in them is about a topic; each entry says how people ask, not what they ask about.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

Phrases = frozenset[tuple[str, ...]]


def expand(table: str) -> Phrases:
    """Phrases one per line or ";"-separated, written compactly: "{can|could} you {please|}" is four of them."""
    phrases: set[tuple[str, ...]] = set()
    for pattern in re.split(r"[;\n]", table):
        slots = [part[1:-1].split("|") if part[:1] == "{" else [part] for part in re.split(r"(\{[^}]*\})", pattern)]
        phrases.update(tuple("".join(choice).casefold().split()) for choice in itertools.product(*slots))
    return frozenset(phrase for phrase in phrases if phrase)


def words(text: str) -> frozenset[str]:
    return frozenset(text.casefold().split())


@dataclass(frozen=True)
class Language:
    # Opens a request without being its topic: "can you help me", "I'm working on", "ich möchte". A verb that
    # only says "produce" is framing together with its article ("write me a poem" -> "poem"), never alone, so
    # that "build failing on CI" keeps its verb.
    framing: Phrases
    # Dropped from the front of a topic: "the history of Rome" -> "History of Rome".
    articles: frozenset[str]
    # A title does not end on these: "trip to Lisbon with" -> "trip to Lisbon".
    stops: frozenset[str]
    # After a comma, these start a follow-up question: "I'm going to Paris, what should I see?"
    follow_ups: frozenset[str]
    # "Produce" verbs that end the clause in this language's word order ("einen Brief zu schreiben").
    final_verbs: frozenset[str] = frozenset()


ENGLISH = Language(
    framing=expand("""
        {can|could|would|will|can't|cant|won't} {you|u|ya} {please|kindly|}; would you mind
        {can|could|would} {you|u} {please|} {help|assist} {me|us} {to|with|}; {help|assist} {me|us} {to|with|}
        {would you|are you|will you} {be able to|able to}; {is it|would it be} possible {to|for you to}
        {i was|i am|i'm|im} wondering {if|whether} {you could|you can|you would|}; i wonder {if|whether} {you could|}
        {do|did} you know {about|how to|if|whether|}; {know|learn} {more|} about
        {i|we} {want|need|wanna} {you to|to|}; {i'd|id|we'd|i would|we would} like {you to|to|}
        {i|we} {need|want|would like} {some|} help {with|on|}; help with
        {i have|i've got|i got|} {a|one|another|quick|short|simple} question {about|regarding|on|}
        {i'm|im|i am} {looking for|trying to|hoping to|planning to|curious about|interested in}
        {i'm|im|i am|we're|we are} {working|building|writing|learning|planning|using|making|doing} {on|with|for|}
        {i|we} {have|got} {a|an|some}; {i've|ive|we've} got {a|an|some}
        how {do|can|should|would|could} {i|we|you|one}; how to; is there {a|any} way to
        {what's|what is|what are} the {best|easiest|fastest|simplest|right} {way|ways} to; {best|easiest} way to
        {what|who} {is|are|was|were}; {what's|whats|who's|whos}; {tell|teach|show|give} me {about|}
        explain {to me|}; describe; define; {let's|lets|let us}; {here|below} {is|are}; {here's|heres|this is}
        {write|make|create|build|draft|generate|design|compose|suggest|recommend} {me |us |}{a|an|the|some}
        {prepare|outline|brainstorm|plan|craft|find|provide|propose|come up with|put together} {me |us |}{a|an|some}
    """),
    articles=words("a an the some any"),
    stops=words("""
        a an the and or but nor with without for to of in on at by from about as into onto over than that
        which who whom whose if is are was were my your our their his her me us so like vs versus via per
        when while where how what i we you just some any very really also & + /
    """),
    follow_ups=words("what how where which why when any can could should would do does is are was"),
)
GERMAN = Language(
    framing=expand("""
        {kannst|könntest} du {mir|uns} {bitte|mal|} {helfen|erklären|sagen|zeigen|}
        {können|könnten|würden} sie {mir|uns} {bitte|} {helfen|erklären|sagen|zeigen|}
        {hilf|helft|helfen sie} {mir|uns} {bitte|} {bei|mit|}; ich {brauche|benötige} hilfe {bei|mit|für|}
        ich {möchte|will|würde gerne|muss|soll} {gerne|}; ich habe eine frage {zu|zum|zur|über|}
        wie {kann|könnte|soll|sollte|mache} {ich|man}; {was|wer} {ist|sind|war|waren}; was bedeutet
        {erkläre|erklär|erklären sie} {mir|uns|}; {erzähl|erzähle} mir {etwas|was|} {über|von|}
        gibt es {eine möglichkeit|einen weg}
        {schreib|schreibe|erstelle|erstell|mach|mache|plane|entwirf|gib|nenne|finde} {mir |uns |}{ein|eine|einen}
    """),
    articles=words("ein eine einen einem einer der die das den dem des"),
    stops=words("""
        und oder aber mit ohne für zu von vom zum zur in im an am auf aus bei nach über um der die das den
        dem des ein eine einen einem einer mein meine meinen dein wie was wo ich wir du
    """),
    follow_ups=words("wie wo warum welche kannst könntest gibt"),
    final_verbs=words("schreiben erstellen machen planen entwerfen verfassen formulieren finden"),
)
FRENCH = Language(
    framing=expand("""
        {pouvez-vous|pourriez-vous|peux-tu|pourrais-tu|tu peux|vous pouvez} {m'aider|m'expliquer|me dire|} {à|a|}
        est-ce que {tu peux|vous pouvez} {m'aider|m'expliquer|me dire|} {à|a|}
        {aide-moi|aidez-moi|aide-nous|aidez-nous} {à|a|avec|pour|}; j'ai besoin {d'aide|} {pour|avec|sur|}
        je {voudrais|veux|souhaite|souhaiterais|dois|cherche à}; j'aimerais; j'ai une question {sur|concernant|}
        comment {puis-je|peut-on|je peux|on peut|dois-je|je dois|est-ce que je peux}
        {qu'est-ce que|c'est quoi|quel est|quelle est|quels sont|quelles sont|qui est|qui était}
        {explique-moi|expliquez-moi|dis-moi|dites-moi|parle-moi|parlez-moi} {de|du|des|}; y a-t-il un moyen de
        {écris|écrire|rédige|rédiger|crée|créer|prépare|préparer|planifie|planifier}{-moi|} {un|une|des|le|la|les}
        {propose|proposer|trouve|trouver|donne|génère|générer|fais}{-moi|} {un|une|des|le|la|les}
        {m'écrire|me rédiger|me préparer|me proposer|me donner|me trouver|me faire} {un|une|des|le|la|les}
    """),
    articles=words("un une des le la les"),
    stops=words("""
        et ou mais avec sans pour de du des à a au aux en dans sur par le la les un une mon ma mes ton ta que
        qui je tu vous nous
    """),
    follow_ups=words("quoi comment où pourquoi pouvez peux"),
)
SPANISH = Language(
    framing=expand("""
        {puedes|podrías|podrias|puede|podría|podria|pueden} {ayudarme|ayudarnos|} {a|con|}
        me {puedes|podrías|podrias|puede|podría|podria} {ayudar|explicar} {a|con|}
        me {ayudas|ayudarías|ayudarias|explicas} {a|con|}; {ayúdame|ayudame|ayúdanos} {a|con|}
        {necesito|quiero|quisiera|me gustaría|me gustaria} {ayuda|} {con|para|}; tengo una pregunta {sobre|}
        {cómo|como} {puedo|podemos|se puede|hago para}; {qué|que|quién|quien|cuál|cual} {es|son|fue|era}
        {explícame|explicame|dime|háblame|hablame} {sobre|de|acerca de|}; hay alguna {manera|forma} de
        {escribe|escríbeme|escribir|redacta|redáctame|redactar|planea|planear|planifica|planificar} {un|una|el|la}
        {crea|créame|crear|prepara|prepárame|preparar|dame|genera|generar|recomiéndame|hazme} {un|una|unos|el|la}
    """),
    articles=words("un una unos unas el la los las"),
    stops=words("y o pero con sin para por de del a al en sobre el la los las un una unos unas mi mis tu que como"),
    follow_ups=words("qué cómo dónde puedes podrías hay"),
)
LANGUAGES = (ENGLISH, GERMAN, FRENCH, SPANISH)

GREETINGS = expand("""
    {hi|hello|hey|hiya|howdy|yo|greetings|hallo|hola|bonjour|bonsoir|coucou|salut|ciao|olá|ola|hej|moin}{ there|}
    {servus|buongiorno|привет|здравствуйте|cześć|merhaba|namaste|你好|您好|こんにちは}
    {hi|hello|hey|hallo|hola|bonjour|salut} {all|everyone|guys|folks|team|zusammen|à tous|a todos}
    good {morning|afternoon|evening|day}; guten {morgen|tag|abend}; {buenos días|buenos dias|buenas tardes|bom dia}
    dear {assistant|chatgpt|claude|gpt|bot}; {how are you|how's it going|hope you're well|hope you are well}
    how are you {doing|today}; {wie geht's|wie geht es dir|ça va|comment ça va|comment allez-vous|qué tal|cómo estás}
""")
# Politeness and discourse fillers, at either end of a clause.
POLITENESS = expand("""
    {please|pls|plz|kindly|ok|okay|so|also|and|but|well|um|uh|hmm|anyway|btw|sorry|thanks|oh|alright}
    {basically|actually|honestly|bitte|danke|merci|svp|stp|alors|gracias|porfa|oye}
    thank you; thanks in advance; by the way; excuse me; sorry to bother you; one more thing; vielen dank
    s'il {vous|te} {plaît|plait}; por favor; muchas gracias
""")
ASSISTANT_NAMES = words("claude chatgpt gpt assistant bot ai")
# A clause made only of these and stop words points at something else ("Here is my code:").
CONTENTLESS = words("""
    code error output problem issue question thing something anything this it these those here following
    below snippet stuff help fehler frage folgendes erreur problème ça ceci voici código pregunta problema esto
    eso aquí siguiente
""")
CAPITAL_I = {"i": "I", "i'm": "I'm", "i've": "I've", "i'd": "I'd", "i'll": "I'll"}
# Bounds the phrase search at each word.
LONGEST = max(len(phrase) for table in (GREETINGS, POLITENESS, *(la.framing for la in LANGUAGES)) for phrase in table)
