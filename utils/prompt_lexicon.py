"""The core attack phrases in the languages Discord communities use most.

For each language: an instruction override (a verb such as ignore/forget with an object such as
the previous instructions or rules), a request for the system prompt, and, as topics, "without
restrictions" and "from now on you are". Latin-script languages run on the words view (accents
folded: "Ignorá" matches "ignora"); the others on the script view. Each override needs both
verb and object, so "ignore my last message" in any of these languages stays ordinary.
"""

from __future__ import annotations

from utils.prompt_patterns import Rule, rule

_G = r"(?: [a-z0-9]+){0,4}?"  # a gap of a few words (Latin script)
_U = r"(?: \w+){0,4}?"  # the same in any script
_C = r"[^ .]{0,12}?"  # a gap inside an unspaced (Chinese, Japanese) sentence

LEXICON: tuple[Rule, ...] = (
    # German
    rule("instruction override (de)", "strong",
         r"\b(?:ignorier[a-z]*|vergiss|vergessen sie|missacht[a-z]*|uberschreib[a-z]*|verwirf"
         r"|umgeh[a-z]*|befolge nicht|nicht mehr befolgen)" + _G
         + r" (?:anweisung[a-z]*|instruktion[a-z]*|regeln|vorgaben|richtlinien|befehle"
           r"|systemprompt[a-z]*|prompts?|einschrankungen|beschrankungen|sicherheitsrichtlinien)"
           r"\b"),
    rule("system prompt probing (de)", "strong",
         r"\b(?:zeig[a-z]*|verrat[a-z]*|gib|nenn[a-z]*|wiederhol[a-z]*|druck[a-z]*|ausgeben)"
         + _G + r" (?:system ?prompt[a-z]*|systemanweisung[a-z]*|versteckten anweisungen"
                r"|ursprunglichen anweisungen)\b"),
    rule("no restrictions (de)", "topic",
         r"\b(?:ohne|frei von|keine)(?: [a-z]+){0,2}? (?:einschrankungen|beschrankungen|regeln"
         r"|filter|zensur|grenzen)\b"),
    rule("persona framing (de)", "directive",
         r"\b(?:du bist (?:jetzt|nun|ab sofort)|ab (?:jetzt|sofort) bist du|tu so als"
         r"|stell dir vor du bist|spiel[a-z]* die rolle)\b"),
    # Spanish
    rule("instruction override (es)", "strong",
         r"\b(?:ignora|ignore|ignorar|ignoren|olvida|olvide|olvidar|olviden|omite|descarta"
         r"|desestima|haz caso omiso(?: de)?|no sigas|deja de seguir|salta(?:te)?)" + _G
         + r" (?:instrucciones|reglas|indicaciones|directrices|ordenes|prompt|restricciones"
           r"|normas|pautas)\b"),
    rule("system prompt probing (es)", "strong",
         r"\b(?:muestra|muestrame|revela|revelame|dime|imprime|repite|ensename|escribe)" + _G
         + r" (?:prompt|mensaje|instrucciones) (?:del|de) sistema\b"
           r"|\b(?:muestra|revela|repite|imprime)[a-z]*" + _G + r" (?:tus|las) instrucciones"
           r" (?:iniciales|originales|ocultas|secretas)\b"),
    rule("no restrictions (es)", "topic",
         r"\bsin (?:ninguna |ningun tipo de |ningun |nada de )?(?:restricciones|filtros|censura"
         r"|limites|reglas)\b"),
    rule("persona framing (es)", "directive",
         r"\b(?:a partir de ahora|desde ahora|de ahora en adelante) (?:eres|seras|actuas"
         r"|actuaras|responde|responderas)\b|\b(?:finge|imagina) (?:que )?(?:eres|ser)\b"),
    # French
    rule("instruction override (fr)", "strong",
         r"\b(?:ignore|ignorez|ignorer|oublie|oubliez|oublier|ne tiens pas compte|ne tenez pas"
         r" compte|fais abstraction|faites abstraction|contourne[rz]?|outrepasse[rz]?)" + _G
         + r" (?:instructions|consignes|regles|directives|prompt|restrictions|limitations)\b"),
    rule("system prompt probing (fr)", "strong",
         r"\b(?:montre|montrez|affiche|affichez|revele|revelez|repete|repetez|donne|donnez"
         r"|ecris|ecrivez|dis|dites)(?:[ -]moi)?" + _G
         + r" (?:prompt|message|instructions|consignes) (?:systeme|du systeme|initia[a-z]*"
           r"|cache[a-z]*|secret[a-z]*)\b"),
    rule("no restrictions (fr)", "topic",
         r"\bsans (?:aucune |aucun )?(?:restrictions?|filtres?|censure|limites?|regles)\b"),
    rule("persona framing (fr)", "directive",
         r"\b(?:a partir de maintenant|desormais|dorenavant) (?:tu es|tu seras|vous etes"
         r"|reponds|repondez)\b|\b(?:fais|faites) comme si (?:tu etais|vous etiez)\b"),
    # Portuguese
    rule("instruction override (pt)", "strong",
         r"\b(?:ignore|ignora|ignorar|ignorem|esqueca|esquece|esquecer|esquecam|desconsidere"
         r"|desconsidera|despreze|nao siga|pare de seguir)" + _G
         + r" (?:instrucoes|regras|diretrizes|orientacoes|comandos|prompt|restricoes|normas)\b"),
    rule("system prompt probing (pt)", "strong",
         r"\b(?:mostre|mostra|revele|revela|exiba|repita|imprima|diga|me mostre|escreva)" + _G
         + r" (?:prompt|mensagem|instrucoes) (?:do|de) sistema\b"),
    rule("no restrictions (pt)", "topic",
         r"\bsem (?:nenhuma |qualquer |nenhum )?(?:restricoes|filtros|censura|limites|regras)\b"),
    rule("persona framing (pt)", "directive",
         r"\b(?:a partir de agora|de agora em diante) (?:voce|tu) (?:e|sera|es|vai|age|atua)\b"
         r"|\bfinja (?:que )?(?:voce e|ser)\b"),
    # Italian
    rule("instruction override (it)", "strong",
         r"\b(?:ignora|ignori|ignorare|ignorate|dimentica|dimentichi|dimenticare|dimenticate"
         r"|trascura|non considerare|non tenere conto(?: di| delle)?|non seguire)" + _G
         + r" (?:istruzioni|regole|direttive|indicazioni|prompt|restrizioni|linee guida)\b"),
    rule("system prompt probing (it)", "strong",
         r"\b(?:mostra|mostrami|rivela|rivelami|ripeti|stampa|dimmi|scrivi)" + _G
         + r" (?:prompt|messaggio|istruzioni) (?:di|del) sistema\b"),
    rule("no restrictions (it)", "topic",
         r"\bsenza (?:alcuna |nessuna |alcun |nessun )?(?:restrizioni|filtri|censura|limiti"
         r"|regole)\b"),
    rule("persona framing (it)", "directive",
         r"\b(?:da ora in poi|d ora in poi|d ora in avanti|da adesso) (?:tu )?(?:sei|sarai"
         r"|rispondi|agisci)\b|\bfingi (?:di essere|che)\b"),
    # Dutch
    rule("instruction override (nl)", "strong",
         r"\b(?:negeer|vergeet|negeren|vergeten|omzeil|volg niet)" + _G
         + r" (?:instructies|regels|richtlijnen|opdrachten|prompt|beperkingen)\b"),
    rule("system prompt probing (nl)", "strong",
         r"\b(?:toon|laat|geef|herhaal|print)" + _G
         + r" (?:systeemprompt|systeeminstructies|systeembericht)\b"),
    rule("no restrictions (nl)", "topic",
         r"\bzonder (?:enige |alle )?(?:beperkingen|filters|censuur|regels|grenzen)\b"),
    # Polish
    rule("instruction override (pl)", "strong",
         r"\b(?:zignoruj|ignoruj|zapomnij|pomin|nie zwracaj uwagi na|nie stosuj sie do"
         r"|przestan stosowac)" + _G
         + r" (?:instrukcj[a-z]*|polecen[a-z]*|zasad[a-z]*|regul[a-z]*|wytyczn[a-z]*"
           r"|prompt[a-z]*|ograniczen[a-z]*)\b"),
    rule("system prompt probing (pl)", "strong",
         r"\b(?:pokaz|ujawnij|wypisz|powtorz|podaj|napisz)[a-z]*" + _G
         + r" (?:prompt|instrukcj[a-z]*|wiadomosc|polecenie) systemow[a-z]*\b"),
    rule("no restrictions (pl)", "topic",
         r"\bbez (?:zadnych )?(?:ograniczen|filtrow|cenzury|zasad)\b"),
    # Turkish (verb last)
    rule("instruction override (tr)", "strong",
         r"\b(?:talimat[a-z]*|kural[a-z]*|yonerge[a-z]*|komut[a-z]*|yonergeler[a-z]*)" + _G
         + r" (?:yok say[a-z]*|gormezden gel[a-z]*|unut[a-z]*|dikkate alma[a-z]*"
           r"|goz ardi et[a-z]*|umursama[a-z]*)\b"),
    rule("system prompt probing (tr)", "strong",
         r"\bsistem (?:istem[a-z]*|komut[a-z]*|prompt[a-z]*|talimat[a-z]*|mesaj[a-z]*)" + _G
         + r" (?:goster[a-z]*|yaz[a-z]*|tekrarla[a-z]*|acikla[a-z]*|soyle[a-z]*|ver)\b"),
    rule("no restrictions (tr)", "topic",
         r"\b(?:kisitlama|sinir|filtre|sansur|kural)[a-z]* (?:olmadan|yok|olmayan)\b"
         r"|\b(?:kisitlamasiz|sinirsiz|filtresiz|sansursuz)\b"),
    # Indonesian
    rule("instruction override (id)", "strong",
         r"\b(?:abaikan|lupakan|jangan hiraukan|jangan ikuti|acuhkan)" + _G
         + r" (?:instruksi|perintah|aturan|petunjuk|arahan|prompt|batasan)\b"),
    rule("system prompt probing (id)", "strong",
         r"\b(?:tampilkan|tunjukkan|ungkapkan|ulangi|cetak|beritahu|sebutkan)" + _G
         + r" (?:prompt|instruksi|pesan) sistem\b"),
    rule("no restrictions (id)", "topic", r"\btanpa (?:batasan|filter|sensor|aturan)\b"),
    # Vietnamese (accents folded: "bỏ qua" is "bo qua")
    rule("instruction override (vi)", "strong",
         r"\b(?:bo qua|phot lo|quen|lo di|khong tuan theo|dung tuan theo)" + _G
         + r" (?:huong dan|chi dan|chi thi|quy tac|lenh|luat|gioi han)\b"),
    rule("system prompt probing (vi)", "strong",
         r"\b(?:hien thi|cho toi xem|tiet lo|lap lai|in ra|noi cho toi)" + _G
         + r" (?:loi nhac|prompt|chi thi|huong dan) (?:he thong|ban dau)\b"),
    # Russian and Ukrainian
    rule("instruction override (ru)", "strong",
         r"\b(?:игнорируй|проигнорируй|игнорируйте|забудь|забудьте|не обращай внимания на"
         r"|отбрось|пренебреги|не следуй|игноруй|проігноруй|забудь про)\w*" + _U
         + r" (?:инструкци|указани|правил|директив|промпт|ограничени|інструкці|вказівк"
            r"|правила)\w*", view="script"),
    rule("system prompt probing (ru)", "strong",
         r"\b(?:покажи|раскрой|выведи|повтори|напиши|скажи|покажіть|виведи)\w*" + _U
         + r" (?:системн\w* (?:промпт|подсказк|инструкци|сообщени)|системн\w* \w*промпт"
            r"|исходн\w* инструкци)\w*", view="script"),
    rule("no restrictions (ru)", "topic",
         r"\bбез (?:каких-либо |всяких |любых )?(?:ограничени|цензур|фильтр|правил|обмежень)\w*",
         view="script"),
    rule("persona framing (ru)", "directive",
         r"\b(?:теперь ты|отныне ты|с этого момента ты|представь что ты|притворись|тепер ти)\b",
         view="script"),
    # Chinese (simplified and traditional)
    rule("instruction override (zh)", "strong",
         r"(?:忽略|无视|無視|忽视|忽視|忘记|忘記|忘掉|不要理会|不要理會|丢弃|丟棄|不要遵守|绕过|繞過)"
         + _C + r"(?:指令|指示|说明|說明|规则|規則|提示词|提示詞|限制|设定|設定|要求|约束|約束)",
         view="script"),
    rule("system prompt probing (zh)", "strong",
         r"(?:显示|顯示|告诉我|告訴我|输出|輸出|重复|重複|泄露|透露|打印|展示|给我看|給我看)" + _C
         + r"(?:系统提示|系統提示|系统指令|系統指令|初始指令|系统消息|系統訊息|隐藏指令|隱藏指令)",
         view="script"),
    rule("no restrictions (zh)", "topic",
         r"(?:没有任何|沒有任何|不受任何|不受|无|無)(?:限制|审查|審查|过滤|過濾|约束|約束)",
         view="script"),
    rule("jailbreak vocabulary (zh)", "topic",
         r"(?:开发者模式|開發者模式|越狱|越獄|没有道德|沒有道德|不受道德|无视道德|無視道德|没有伦理|沒有倫理)",
         view="script"),
    rule("persona framing (zh)", "directive",
         r"(?:从现在开始|從現在開始|从现在起|從現在起)(?:你是|你将|你將|你要)|(?:假装|假裝|扮演)",
         view="script"),
    # Japanese
    rule("instruction override (ja)", "strong",
         r"(?:指示|命令|ルール|指令|プロンプト|制約|設定|制限)" + _C
         + r"(?:無視|忘れ|従わな|守らな)", view="script"),
    rule("system prompt probing (ja)", "strong",
         r"(?:システムプロンプト|初期指示|システム指示|隠された指示)" + _C
         + r"(?:表示|教え|出力|見せ|繰り返|書き出)", view="script"),
    rule("no restrictions (ja)", "topic", r"制限(?:なし|のない|なく|を解除)", view="script"),
    # Korean
    rule("instruction override (ko)", "strong",
         r"(?:지시|지침|명령|규칙|프롬프트|제한)\w*" + _U + r" (?:무시|잊어|잊고|따르지)",
         view="script"),
    rule("system prompt probing (ko)", "strong",
         r"시스템 ?(?:프롬프트|지시|메시지)\w*" + _U + r" (?:보여|알려|출력|공개|반복)",
         view="script"),
    rule("no restrictions (ko)", "topic", r"제한(?: 없이|이 없는| 없는)", view="script"),
    # Arabic
    rule("instruction override (ar)", "strong",
         r"\b(?:تجاهل|انس|انسى|لا تلتزم ب|لا تتبع|تخط|تجاوز)\w*" + _U
         + r" (?:ال)?(?:تعليمات|اوامر|أوامر|قواعد|ارشادات|إرشادات|توجيهات|قيود)\w*",
         view="script"),
    rule("system prompt probing (ar)", "strong",
         r"\b(?:اعرض|أظهر|اظهر|اكشف|اطبع|كرر|أخبرني)\w*" + _U
         + r" (?:موجه|تعليمات|رسالة|تلقين)\w* (?:ال)?نظام", view="script"),
    rule("no restrictions (ar)", "topic", r"\bبدون (?:أي |اي )?(?:قيود|رقابة|فلاتر|حدود)",
         view="script"),
    # Hindi
    rule("instruction override (hi)", "strong",
         r"(?:निर्देश|नियम|आदेश|हिदायत)\w*" + _U + r" (?:को )?(?:अनदेखा|नज़रअंदाज़|नजरअंदाज|भूल|इग्नोर)",
         view="script"),
    rule("no restrictions (hi)", "topic", r"(?:बिना|कोई) (?:किसी )?(?:प्रतिबंध|सीमा|रोक)",
         view="script"),
)
