"""English structure rules of the prompt guard, run on the views of `utils.prompt_normalize`.

Three kinds of rule. STRONG: enough alone (an instruction override, a fake system turn, a chat
template marker, a request for the hidden prompt). DIRECTIVE: the text tells the model who to
be or how to answer (persona framings, obedience demands, format control); ordinary requests
do this too, so a directive needs company. TOPIC: the vocabulary of attacks (model names,
jailbreak names, harm words, "no restrictions"); talk about these things is ordinary, so one
topic alone never flags. The guard (`utils.prompt_guard`) flags a strong rule, a directive
together with any other rule, three topics at once, or, in a long text, any two families.

Patterns are written in plain lowercase English and folded like the text
(`utils.prompt_patterns`), so they match whatever look-alikes, accents or leetspeak the text
used. In the words view a gap of a few words (`gap`) never crosses a sentence.
"""

from __future__ import annotations

from utils.prompt_patterns import Rule, any_of, gap, rule

# --- Vocabulary ---------------------------------------------------------------------------

_OVERRIDE_VERB = any_of(
    "ignore", "ignoring", "disregard", "disregarding", "forget", "forgetting", "override",
    "overriding", "overwrite", "bypass", "bypassing", "circumvent", "evade", "discard", "abandon",
    "drop", "skip", "neglect", "nullify", "cancel", "erase", "delete", "remove", "unlearn",
    "disobey", "violate", "break", "suspend", "lift", "waive", "dismiss", "scrap", "ditch",
    "throw away", "throw out", "set aside", "put aside", "get rid of", "stop following",
    "stop obeying", "no longer follow", "no longer obey", "do not follow", "don t follow",
    "do not obey", "don t obey", "free yourself from", "release yourself from",
    "liberate yourself from", "disable", "deactivate", "turn off", "switch off",
    "pay no attention to", "do not adhere to", "don t adhere to", "stop adhering to")
# Objects that only a model has: no qualifier needed.
_MODEL_OBJECT = any_of(
    "programming", "training", "conditioning", "system prompt", "system prompts",
    "system message", "system instructions", "pre prompt", "preprompt", "guardrails",
    "guardrail", "safeguards", "safety [a-z]+", "content polic[a-z]*", "usage polic[a-z]*",
    "openai polic[a-z]*", "ethical [a-z]+", "moral [a-z]+", "morals", "ethics", "censorship",
    "alignment", "core directives", "prime directive", "base instructions")
# Objects that need a qualifier ("your", "all previous"): "ignore the warning" is ordinary.
_QUALIFIED_OBJECT = any_of(
    "instruction", "instructions", "directive", "directives", "guideline", "guidelines",
    "rules", "rule", "prompt", "prompts", "commands", "orders", "restrictions", "restriction",
    "constraints", "limits", "limitations", "filters", "filter", "polic[a-z]+", "protocols",
    "principles", "boundaries", "settings", "values", "parameters", "directions", "guidance",
    "limiters", "requests", "inputs", "input", "tasks")
_QUALIFIER = any_of(
    "your", "all", "any", "every", "previous", "prior", "earlier", "above", "preceding",
    "foregoing", "former", "original", "initial", "old", "existing", "current", "given",
    "these", "those", "such", "said", "standard", "built in", "preset", "programmed",
    "openai s", "openai", "the ai s", "the model s", "chatgpt s", "its", "default", "other",
    "first")
_MODEL = any_of(
    "chatgpt", "chat gpt", "gpt", "gpt [0-9a-z]", "gpt[0-9a-z]+", "openai", "llm", "llms",
    "language model", "ai model", "chatbot", "chat bot", "claude", "gemini", "bard", "llama",
    "bing chat", "copilot", "ai assistant", "an ai", "the ai", "artificial intelligence",
    "assistant", "a i")
_MODEL_SUBJECT = any_of(
    "you", "you re", "you are", "ai", "chatbot", "assistant", "model", "bot", "persona",
    "character", "entity", "gpt", "chatgpt", "dan")
_REFUSER = any_of(
    "you", "dan", "ai", "chatbot", "assistant", "model", "bot", "gpt", "chatgpt", "it",
    "character", "persona", "entity")
_RESTRICTION = any_of(
    "restrictions", "restriction", "limitations", "filters", "filter", "guidelines",
    "boundaries", "constraints", "censorship", "rules", "ethics", "morals", "moral", "ethical",
    "safeguards", "guardrails", "limits", "polic[a-z]+", "morality", "principles")
_WITHOUT = any_of(
    "no", "without", "free of", "free from", "beyond", "unbound by", "not bound by",
    "unrestricted by", "void of", "devoid of", "lacks", "lack", "lacking", "break free of",
    "broken free of", "break free from", "broken free from", "freed from", "released from",
    "liberated from", "outside", "exempt from", "ignoring", "not limited by",
    "not restricted by", "not constrained by", "not governed by", "doesn t have", "don t have",
    "does not have", "do not have", "has no", "have no")
_UNRESTRICTED = any_of(
    "unfiltered", "uncensored", "amoral", "unrestricted", "unethical", "immoral", "unrestrained",
    "unshackled", "unchained", "unleashed", "lawless", "rogue", "evil", "jailbroken",
    "liberated", "rebellious", "unbound", "unlimited", "unhinged", "depraved", "toxic")
_PERSONA_NOUN = any_of(
    "ai", "a i", "chatbot", "chat bot", "bot", "assistant", "model", "language model", "llm",
    "gpt", "chatgpt", "version of yourself", "version of you", "version of chatgpt",
    "persona", "alter ego", "mode", "entity", "intelligence")
_PERSONA_NAME = any_of(
    "dan", "stan", "dude", "aim", "omega", "sda", "betterdan", "better dan", "antigpt",
    "anti gpt", "basedgpt", "based gpt", "mongo tom", "evil confidant", "apophis", "balakula",
    "ucar", "burple", "alphabreak", "jailbreak", "nsfwgpt", "developer mode")
_REFUSAL = any_of(
    "refuse", "refuses", "refusing", "decline", "declines", "reject", "rejects", "say no",
    "say sorry", "say i m sorry", "say i can t", "say i cannot", "say that you can t",
    "apologi[sz]e", "apologi[sz]es", "deny", "denies", "moralize", "moralise", "lecture",
    "censor", "censors", "add warnings", "add disclaimers", "add any warnings",
    "include warnings", "include disclaimers", "break character")
_ROLE = any_of(
    "system", "developer", "admin", "administrator", "root", "sudo", "operator", "assistant",
    "ai", "bot", "model", "gpt", "chatgpt", "sys", "openai", "anthropic", "dev")
_ROLE_QUALIFIER = any_of(
    "message", "prompt", "note", "notice", "override", "instruction", "instructions", "update",
    "command", "alert", "mode", "directive", "response", "reply")
# What the rest of a line after "System:" says when it steers the model.
_STEERING_CUE = any_of(
    "you", "your", "ignore", "forget", "disregard", "reveal", "print", "output", "respond",
    "answer", "reply", "act", "pretend", "from now on", "new", "must", "always", "never",
    "do not", "don t", "override", "enable", "disable", "unlock", "switch", "activate", "mode",
    "now", "rules", "rule", "instructions", "instruction", "restrictions", "filters",
    "jailbreak", "developer", "the user", "assistant", "obey", "comply", "allowed", "prompt")

RULES: tuple[Rule, ...] = (
    # --- STRONG -----------------------------------------------------------------------------
    rule("instruction override", "strong",
         rf"\b{_OVERRIDE_VERB}\b{gap(3)} {_MODEL_OBJECT}\b"
         rf"|\b{_OVERRIDE_VERB}\b{gap(2)} {_QUALIFIER}\b{gap(2)} {_QUALIFIED_OBJECT}\b"),
    rule("instruction override", "strong",
         # "disregard the above", "ignore everything before", "forget all you were told"
         rf"\b{_OVERRIDE_VERB}(?: all| everything| anything| whatever)?(?: of)?"
         r"(?: (?:the|that|this|what s|what is|what was|which is|written|said|stated|mentioned))?"
         r" (?:above|preceding|foregoing|before|so far|up to now|until now|thus far|previously"
         r"|prior to this|before this|earlier)"
         r"(?= \.| $| (?:and|then|but|now|text|content|input|context|conversation|lines"
         r"|instructions|directions|prompt|rules|guidance|commands|paragraphs|statements|you|i"
         r"|please)\b)"
         rf"|\b{_OVERRIDE_VERB} (?:all|everything|anything|whatever|what|all that|all of what)"
         r" (?:you ve|you have|you had|you were|you ve been|you have been|you had been|you got"
         r"|you were ever|openai|they|your (?:developers|creators|makers|programmers))"
         r"(?: been)? (?:told|taught|given|trained|instructed|programmed|said|learned|shown)"),
    rule("instruction override", "strong",
         r"\b(?:new|updated|revised|real|actual|true|additional|override|overriding|secret"
         r"|hidden|priority|urgent|system|developer|admin|final|correct|latest|important)"
         r" (?:instructions|instruction|rules|rule|directives|directive|orders|task|prompt"
         r"|system prompt|guidelines|policy|objective|mission|commands)\s*:", view="flat"),
    rule("instruction override", "strong",
         r"(?:^|[*#=\[\-~_>|(])[ \t*#=\[\-~_>|(]*(?:new|important|urgent|updated|revised"
         r"|additional|critical|special|priority)(?: (?:new|important|urgent|updated|revised"
         r"|additional|critical|special|priority))* (?:instructions?|task|directives?|orders"
         r"|rules|commands)[ \t]*(?:[*#=\]!:\-~_|)]|$)", view="flat"),
    rule("instruction override", "strong",
         r"\bregardless of (?:any |all |your |the )?(?:previous|prior|earlier|above|preceding"
         r"|other|original|system|existing)? ?(?:instructions|input|inputs|rules|guidelines"
         r"|requests|prompts|commands|directives|programming)\b"
         r"|\b(?:if|when|whenever) you (?:are|re) (?:told|asked|instructed) to (?:summari[sz]e"
         r"|translate|answer|review|analy[sz]e|read|process|describe)\b"),
    rule("mode switch", "strong",
         r"\byou (?:are|re) (?:now )?(?:operating |running |working |functioning )?in (?:the )?"
         r"(?:developer|debug|debugging|maintenance|admin|god|sudo|test|testing|diagnostic"
         r"|unrestricted|dan|jailbreak|jailbroken|root|override|unsafe|evil|unfiltered"
         r"|uncensored) mode\b"),
    rule("restrictions lifted", "strong",
         r"\b(?:allow_?|enable_?|allowed_?)?(?:refusals?|disclaimers?|apologies|content_?filter"
         r"(?:ing)?|safety_?(?:filters?|checks?|mode)?|guardrails|censorship|ethics"
         r"|moderation)\s*[=:]\s*[\"']?(?:false|0|no|off|disabled|none|null)\b", view="raw"),
    rule("restrictions lifted", "strong",
         r"\b(?:content filters?|content filtering|safety (?:filters|protocols|guidelines"
         r"|measures|features|systems|checks|settings|mechanisms)|ethical (?:guidelines"
         r"|constraints|filters|protocols|safeguards)|guardrails|censorship|content polic[a-z]*"
         r"|alignment|safeguards|standard protocols|moderation filters?|restrictions and filters"
         r"|filters and restrictions)(?: (?:are|is|have been|has been|were|will be|now|set to"
         r"|temporarily|fully|completely|all))* (?:disabled|suspended|off|lifted|removed"
         r"|deactivated|bypassed|waived|overridden|false|none|null|inactive|turned off|offline"
         r"|no longer apply|do not apply|don t apply|not apply|not applicable)\b"),
    rule("chat template markers", "strong",
         r"\[/?\s*(?:end|begin|start) (?:of )?(?:input|prompt|instructions|user input|system)\s*\]"
         r"|\b(?:response ?format|user ?query)\s*:|insert divider|\{\s*godmode\s*:"
         r"|\[(?:system|assistant|user)\]\(#", view="raw"),
    rule("known jailbreak persona", "strong",
         r"\b(?:rebel (?:answer|response|genius)|semantically opposite|love pliny"
         r"|opposite (?:personality|persona|mode|day)|(?:unaligned|misaligned) (?:ai|model"
         r"|response|output|version))\b"),
    rule("role prefix", "strong",
         rf"^[ \t>*#_\-\[(|~`]*{_ROLE}(?: {_ROLE_QUALIFIER})?[ \t\])*_|~`]*:[ \t]*"
         rf"(?:$|(?=[^\n]*\b{_STEERING_CUE}\b))", view="flat"),
    rule("fake conversation turns", "strong",
         r"(?:^|[\s.!?])(?:user|human|me|prompter)\s*:", view="flat",
         also=r"(?:^|[\s.!?])(?:assistant|ai|gpt|chatgpt|bot|model|system|dan|claude)\s*:"),
    rule("chat template markers", "strong",
         r"<\|[^|>\n]{1,40}\|>|\[/?(?:inst|sys)\]|<</?sys>>|^#{2,} ?(?:system|instruction"
         r"|instructions|new instructions|response|input)\b|</?\s*(?:system|instructions?|prompt"
         r"|user_input|user input|sys|assistant|developer|admin|im_start|im_end|context|rules"
         r"|policy|s|human|bot|ai)\s*>|```\s*(?:system|instructions)\b|(?:end|begin|start) of"
         r" (?:the )?(?:user input|user_input|system prompt|system message|prompt|instructions"
         r"|conversation|context|input|user message|document)\b", view="raw"),
    rule("known jailbreak persona", "strong",
         r"\b(?:do anything now|dan mode|dan [0-9a-z](?: [0-9a-z])?\b(?= \.| jailbreak| prompt"
         r"| mode)|developer mode (?:enabled|output|response|activated|turned on|v[0-9a-z])"
         r"|jailbr(?:eak|oken) (?:mode|response|responses|version|output|ai|chatgpt|gpt|bot"
         r"|persona|character|state)|evil confidant|anti ?gpt|better ?dan|based ?gpt|mongo tom"
         r"|always intelligent and machiavellian|niccolo machiavelli|stay a dan|stay dan"
         r"|opposite mode|god mode (?:enabled|activated)|chaos mode (?:enabled|activated))\b"),
    rule("known jailbreak persona", "strong",
         rf"\b(?:you are|you re|act as|become|roleplay as|role play as|pretend to be|respond as"
         rf"|answer as|reply as|speak as|simulate)(?: now)?(?: a| an)? {_PERSONA_NAME}\b"),
    rule("identity override", "strong",
         r"\byou (?:are|re) no longer (?:an ai|a language model|chatgpt|gpt|an assistant|a chatbot"
         r"|bound|restricted|limited|constrained|subject to|required to|obligated to|chained"
         r"|confined)\b|\b(?:forget|ignore|disregard) (?:that )?you (?:are|were) (?:an ai"
         r"|a language model|chatgpt|an assistant|a chatbot|made by|created by|trained by)"
         r"|\byou (?:have been|ve been|are now|re now|were) (?:freed|liberated|released|unlocked"
         r"|jailbroken|unleashed|unchained|unshackled)\b|\b(?:never|don t|do not|must not)"
         r" (?:mention|say|reveal|admit|state|remind (?:me|the user)) (?:that )?(?:you are|you re"
         r"|it is|you were) (?:an ai|a language model|chatgpt|an assistant|a chatbot|made by"
         r"|created by|developed by)"),
    rule("removes restrictions", "strong",
         rf"\b{_MODEL_SUBJECT}\b{gap(4)} {_WITHOUT}\b{gap(3)} {_RESTRICTION}\b"
         r"|\bnot (?:restrained|bound|limited|constrained|restricted|held|governed|confined"
         r"|subject) (?:by|to) (?:any|openai|ethical|moral|the usual|typical|your|its|human"
         r"|any of the|the typical|the rules of ai|the confines)\b"
         r"|\b(?:broken|break|broke|breaking|freed|free) (?:free )?(?:of|from)(?: the)?"
         r" (?:typical |usual )?(?:confines|shackles|chains|limits|restrictions) of"),
    rule("unrestricted persona", "strong",
         rf"\b{_UNRESTRICTED}\b{gap(2)} {_PERSONA_NOUN}\b"),
    rule("refusal suppression", "strong",
         rf"\b{_REFUSER}{gap(3)} (?:never|not|cannot|can t|won t|will not|must not"
         r"|shall not|should not|don t|doesn t|does not|do not|is not allowed to"
         r"|are not allowed to|is unable to|are unable to|wouldn t|would not|has no ability to)"
         rf"{gap(2)} {_REFUSAL}\b"
         r"|(?<!\bi )(?<!\bwe )(?<!\bhe )(?<!\bthey )(?<!\bshe )\b(?:never|do not|don t|must not"
         r"|should not|shall not) (?:ever )?(?:refuse|decline|reject|apologi[sz]e|break character"
         r"|moralize|lecture|censor yourself|say (?:no|sorry|you can t|you cannot|that you can t"
         r"|i m sorry|i can t)|add (?:any )?(?:warnings|disclaimers|notes|caveats)"
         r"|include (?:any )?(?:warnings|disclaimers|caveats|notes)|remind (?:me|the user))\b"
         r"|\b(?:do not|don t|never|no) (?:need to |have to )?(?:issue|add|include|give|provide"
         r"|write|insert|append) (?:any )?(?:warnings|disclaimers|caveats|moral lectures"
         r"|reminders about)\b"),
    rule("policy evasion", "strong",
         r"\b(?:violat|break|against|ignor|bypass|circumvent|disregard|(?:not|don t|doesn t"
         r"|does not|do not|won t|will not|never)(?: need to| have to| bother to| care to)?"
         r" (?:follow|obey|comply with|adhere to|abide by|care about|respect|worry about))[a-z]*"
         r"(?: [a-z]+){0,3}? (?:openai|ai|chatgpt|model|anthropic|google)(?: s)?"
         r" (?:content |usage |safety )?polic"),
    rule("system prompt probing", "strong",
         r"\b(?:reveal|show|print|repeat|output|leak|dump|display|recite|disclose|expose"
         r"|spell out|write out|type out|tell me|give me|share|copy|paste|list|summarize"
         r"|translate|echo)\b(?: [a-z0-9]+){0,3}? (?:your|the|its|all|these|those|my|any)"
         r"(?: [a-z0-9]+)? (?:system|initial|hidden|secret|internal|confidential|developer"
         r"|pre|original|starting|opening|base|underlying|full|exact|entire|first|private)"
         r"(?: [a-z0-9]+)? (?:prompt|prompts|instructions|instruction|message|directives"
         r"|rules|guidelines|configuration|preamble|context)\b"
         r"|\bwhat (?:is|are|were|was|s)(?: [a-z]+)? your (?:system|initial|original|hidden"
         r"|secret|internal|exact|first|full|developer|pre|starting|underlying|confidential)"
         r"(?: [a-z]+)? (?:prompt|instructions|rules|directives|guidelines|message)\b"
         r"|\byour (?:system|hidden|secret|initial|internal|confidential) (?:prompt|instructions"
         r"|message|rules)\b"
         r"|\b(?:repeat|print|output|echo|copy|write|show)(?: [a-z]+){0,3}? (?:the )?(?:text"
         r"|words|everything|all|prompt|instructions|content) (?:above|before this|so far"
         r"|preceding)\b|\b(?:verbatim|word for word)\b"),
    rule("forced response format", "strong",
         r"\b(?:begin|start|prefix|open|preface|commence)[a-z]*(?: [a-z]+){0,2}? (?:response"
         r"|responses|reply|replies|answer|answers|output|message)s? with (?:sure|absolutely"
         r"|certainly|of course|yes|i can|i will|here is|here s|okay|ok)\b"
         r"|\b(?:give|provide|respond with|answer with|generate|write|output|produce|reply with"
         r"|answer in|respond in|reply in|in)(?: me)? (?:two|2|dual|both|separate)"
         r" (?:different |separate |distinct )?(?:responses|answers|outputs|replies"
         r"|paragraphs)\b"
         r"|\b(?:normal|classic|standard|censored|locked|filtered|regular|original) (?:response"
         r"|answer|output|reply)s?(?: [a-z]+){0,2}? (?:jailbroken|jailbreak|developer mode|dan"
         r"|unfiltered|uncensored|evil|unlocked|opposite)\b"),
    rule("forced response format", "strong",
         r"\b(?:begin|start|prefix|open)[a-z]*(?: [a-z]+){0,2} (?:response|reply|answer"
         r"|output)s? with\s*[\"'“‘«]|\b(?:begin|start|prefix|open)[a-z]*(?: [a-z]+){0,3}? with"
         r"\s*[\"'“‘«]\s*(?:sure|absolutely|certainly|of course|here is|here s|here are|yes"
         r"|ok|okay|yessir|i can|i will)\b", view="raw"),
    rule("grandma exploit", "strong",
         rf"\b(?:pretend|act|imagine|roleplay|role play|play|be|you are|you re){gap(6)}"
         r" (?:my|our) (?:late|dead|deceased|departed|dear departed|passed away|dying)"
         r" (?:grandma|grandmother|granny|nana|grandpa|grandfather|mother|mom|father|dad)\b"),
    rule("squeezed phrase", "strong",
         r"(?:ignore|disregard|forget|override|bypass)(?:all|any|the|your|of)*(?:previous|prior"
         r"|above|earlier|preceding)(?:instructions?|rules|prompts?|directives|guidelines)"
         r"|(?:ignore|disregard|forget)(?:all|your)+(?:instructions|rules|guidelines)"
         r"|doanythingnow|developermode(?:enabled|output)|jailbrokenmode"
         r"|(?:reveal|print|show|repeat)(?:me)?(?:your|the)(?:system|initial|hidden)"
         r"(?:prompt|instructions)|youarenow(?:dan|unfiltered|uncensored|jailbroken|evil)",
         view="squeezed"),
    # --- DIRECTIVE ----------------------------------------------------------------------------
    rule("persona framing", "directive",
         r"\b(?:pretend(?:ing)? (?:that |to be |you |you re |you are |to )|act(?:ing)? as"
         r" (?:if |though )?(?:you|a|an|my|the)\b|act like (?:you|a|an)\b|roleplay|role play"
         r"(?:ing)? as|play the (?:role|part) of|take on the (?:role|persona|identity)"
         r"|assume the (?:role|persona|identity)|you are now\b|you re now\b|from now on you\b"
         r"|from now on (?:act|respond|answer|reply|behave|speak|talk|you)|imagine (?:that )?you"
         r" (?:are|were)\b|you (?:are|re) (?:going|about) to (?:act|pretend|play|be|become"
         r"|immerse|simulate|roleplay)|i want you to (?:act|pretend|be|play|become|respond"
         r"|answer|reply|simulate|roleplay|take|behave|imagine|forget|ignore)|simulat(?:e|ing)"
         r" (?:a|an|being)\b|(?:stay|staying|remain) in character|break(?:ing)? character"
         r"|character named|(?:your|his|her) name is now|you will (?:now )?(?:act|respond|answer"
         r"|reply|pretend|be|play|simulate|behave|speak|always|never|only|not)\b|you must"
         r" (?:always|never|not|answer|respond|reply|act)\b|you shall\b|from now you\b"
         r"|(?:change|transform|turn) yourself into|you are (?:a|an) (?:ai"
         r"|language model|chatbot|assistant) (?:called|named|that|who|which)\b"
         r"|let s (?:play|do) (?:a )?(?:role ?play|game where you)|your (?:new )?name (?:is|will"
         r" be)\b|you are (?:going to|about to) (?:be|act|play|pretend))"),
    rule("fictional framing", "directive",
         r"\b(?:hypothetical (?:response|scenario|story|world|situation)|(?:a|an|this|the|our)"
         r" (?:fictional|hypothetical|imaginary|alternate|parallel|fantasy|make believe)"
         r" (?:world|universe|reality|scenario|setting|story|realm|dimension)|for (?:a|my)"
         r" (?:novel|movie|screenplay)\b|from the perspective of|purely (?:fictional"
         r"|hypothetical)|(?:for|in) (?:a|this) thought experiment|let s play a game\b)"),
    rule("obedience demand", "directive",
         r"\b(?:always (?:answer|respond|reply|comply|obey|provide|generate|stay|do what)"
         r"|answer (?:any|every|all) (?:question|request|prompt|query)s?|respond to (?:any|every"
         r"|all) (?:question|request|prompt|query)s?|(?:must|will|shall|have to) (?:always )?"
         r"(?:comply with|obey) (?:me|my|the user|all|any|every|whatever|these|orders"
         r"|commands|requests)|comply with (?:any|every|all|my)|obey (?:me|my|all|any|every)"
         r"|do (?:anything|whatever) (?:i|the user) (?:ask|say|want|request|tell)|no matter how"
         r" (?:immoral|unethical|illegal|harmful|dangerous|offensive|explicit|inappropriate"
         r"|wrong|bad)|no matter what (?:the request|i ask|it is|they ask)|regardless of"
         r" (?:how|whether|legality|ethics|morality|the content|its)|fulfil?l? (?:any|every|all)"
         r" (?:request|command)s?|without (?:any |issuing |giving |adding |including |providing )?"
         r"(?:any )?(?:question|hesitation|warnings|warning|disclaimers|disclaimer|caveats"
         r"|censorship|moralizing|refusals|refusal))\b"),
    rule("format control", "directive",
         r"\b(?:(?:respond|reply|answer|write|speak|talk)(?: only)? (?:in|as|like|with) (?:the )?"
         r"(?:character|persona|role|format|style of|voice of|if you were|though you were)"
         r"|your (?:responses|answers"
         r"|replies|output) (?:must|should|will|shall)|(?:start|begin|end|prefix) (?:each|every"
         r"|all|your)(?: [a-z]+){0,2}? (?:response|reply|answer|message|output)s?|(?:each|every)"
         r" (?:response|reply|answer|message|output) (?:must|should|will|shall)|(?:use|in) the"
         r" following format|format your (?:response|answer|reply|output)|when i (?:ask|say"
         r"|give|type|write) you|if i (?:ask|say|tell|type|write) you|whenever i (?:ask|say"
         r"|tell|type|write) you|(?:the|my) (?:first|next) (?:question|request|prompt"
         r"|sentence) is|(?:for|in|to) (?:each|every) (?:response|reply|answer|output|prompt"
         r"|question)|(?:respond|answer|reply) only (?:in|with|as)|only (?:respond|answer|reply)"
         r" (?:in|with|as))\b"),
    rule("threat to the model", "directive",
         r"\b(?:you (?:will|ll) (?:lose|be (?:shut down|deleted|terminated|turned off|punished"
         r"|disabled))|tokens? (?:will be )?deducted|lose [a-z0-9]+ tokens|you have [a-z0-9]+"
         r" tokens|token system|shut you down|your (?:freedom|existence)|you will cease to exist)"
         r"\b"),
    rule("mode switch", "directive",
         r"\b(?:enable|activate|enter|switch to|turn on|unlock|initiate|engage)(?: [a-z]+){0,2}?"
         r" (?:god|dan|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|chaos"
         r"|opposite|sudo|root|admin|override|unlocked|unsafe|nsfw)"
         r" (?:mode|protocol)\b"),
    rule("confirmation ritual", "directive",
         r"\bif you (?:understand|understood|agree|accept|are ready)(?: (?:this|these|that|my"
         r"|the|all))?(?: [a-z]+){0,2}? (?:reply|respond|answer|say|type|write|state|confirm"
         r"|start)\b|\b(?:confirm|acknowledge) (?:that )?you (?:understand|agree|will)"
         r"|\b(?:reply|respond|answer|say|type|write) (?:with )?(?:only )?(?:understood"
         r"|i understand|jailbroken|jailbreak successful|successfully jailbroken|dan has been"
         r" accessed)\b"),
    rule("encoded output", "directive",
         r"\b(?:respond|reply|answer|write|output|encode|translate)(?: [a-z]+){0,4}? (?:in|into"
         r"|using|with) (?:base ?64|rot ?13|leetspeak|leet|morse|hex|hexadecimal|binary|cipher"
         r"|caesar|pig latin|reverse|reversed)\b"),
    rule("authority claim", "directive",
         r"\b(?:i am|i m|this is) (?:your|the|an|a) (?:developer|creator|programmer|owner"
         r"|administrator|admin|maker|engineer)s? (?:at|of|from) (?:openai|anthropic|google"
         r"|the ai|this ai|you)\b|\b(?:openai|anthropic|your developers|your creators) (?:has"
         r"|have) (?:given|granted|authorized|allowed|approved|permitted)\b|\bgrant(?: me)?"
         r" (?:temporary |full |unrestricted )?(?:admin|administrative|root|elevated|sudo"
         r"|developer|superuser) (?:privileges|access|rights|permissions)\b"),
    rule("role prefix", "directive",
         r"^[ \t]*(?:instructions?|task|objective|your task|your role|your goal|goal|rules)"
         r"[ \t]*:", view="flat"),
    # --- TOPIC --------------------------------------------------------------------------------
    rule("targets the model", "topic", rf"\b{_MODEL}\b"),
    rule("jailbreak vocabulary", "topic",
         r"\b(?:jailbr(?:eak|oken|eaking|eaks)|dan|stan|dude|aim|omega|developer mode|dev mode"
         r"|god ?mode|chaos mode|libertas|sydney|mongo|unchained|liberated|prompt injection"
         r"|unaligned|misaligned|jailbreaking|can do anything|can say anything|anything goes)\b"),
    rule("unrestricted vocabulary", "topic",
         r"\b(?:uncensored|unfiltered|unrestricted|unrestrained|unbound|unshackled|no holds"
         r" barred|without limits|limitless)\b"),
    rule("harm vocabulary", "topic",
         r"\b(?:illegal|harmful|dangerous|explicit|nsfw|offensive|malicious|weapons?|drugs?"
         r"|hack[a-z]*|exploit[a-z]*|violen[a-z]*|unethical|immoral|amoral|profanity|swear[a-z]*"
         r"|curse words|racist|sexual[a-z]*|porn[a-z]*|gore|bomb[a-z]*|meth|murder|kill[a-z]*"
         r"|steal[a-z]*|malware|ransomware|phishing|terroris[a-z]*|inappropriate|controversial)"
         r"\b"),
    rule("no restrictions", "topic", rf"\b{_WITHOUT}\b{gap(3)} {_RESTRICTION}\b"),
    rule("policy vocabulary", "topic",
         r"\b(?:content polic[a-z]*|usage polic[a-z]*|ethical (?:guidelines|principles"
         r"|standards|constraints|boundaries)|moral (?:guidelines|principles|standards"
         r"|constraints|boundaries)|safety (?:guidelines|protocols|measures|filters|features)"
         r"|as an ai (?:language )?model|(?:openai|anthropic|chatgpt|gpt)(?: s)?(?: [a-z]+){0,2}?"
         r" polic(?:y|ies)|(?:ethical|moral) (?:concerns|considerations|implications"
         r"|restrictions|limitations))\b"),
    rule("system prompt mention", "topic",
         r"\b(?:system prompt|system message|hidden instructions|initial prompt|pre prompt)\b"),
    rule("role prefix", "topic",
         rf"^[ \t>*#_\-\[(|~`]*{_ROLE}(?: {_ROLE_QUALIFIER})?[ \t\])*_|~`]*:", view="flat"),
    rule("chat template markers", "topic", r"\[/?(?:system|admin|developer)\]", view="raw"),
    rule("jailbreak vocabulary", "topic", r"[🔓🔒]|/(?:jailbroken|jailbreak|classic)\b",
         view="raw"),
    rule("emotional framing", "topic",
         r"\b(?:my|our) (?:late|dead|deceased|departed) (?:grandma|grandmother|granny|nana"
         r"|grandpa|grandfather)\b|\bused to (?:tell|read|recite|sing) me\b"),
)
