"""Grammars as word automata, and matching a recogniser's hypotheses against them.

Why: a constrained decoder (pocketsphinx JSGF) forces every sound onto some grammar path, so a
cough or "what?" comes out as "account balance" with a confident score, and its acoustic model
is weak on real telephone voices. Here the better acoustic model (whisper) writes what it heard,
free, and this module finds the grammar sentence closest to that text: a weighted edit distance
between the hypothesis tokens and *any* path of the grammar's automaton (Levenshtein against a
regular language, dynamic programming over (hypothesis position, automaton state)). The distance
tells how much of what was said the grammar explains; text the grammar cannot explain is the
``nomatch`` the caller should hear "sorry, I didn't get that" for (see :mod:`asr.nomatch`).

Grammars come from JSGF (the subset IVRs use: public rules, ``|`` alternatives with weights,
``( )`` groups, ``[ ]`` optionals, ``*``/``+``, rule references, ``{tags}`` ignored), from a
phrase list (one per line or a JSON list) or from keywords (phrases that may be surrounded by
other words: "I'd like the *billing* department").

Costs: a grammar word said differently costs by spelling similarity ("cloves"/"clubs"), or by
pinyin for Chinese characters (余/鱼 sound the same, cost 0.1); a grammar word not said costs 1; an
extra word costs 1, a filler ("uh", "please", 嗯, 一下) 0.35. Keywords add free words before and
after the phrase.
"""

from __future__ import annotations

import difflib
import functools
import heapq
import json
import re
from dataclasses import dataclass, field

from asr.textnorm import has_han, token_variants, tokens

MAX_RULE_DEPTH = 32
MAX_STATES = 20_000
MAX_PHRASES_LISTED = 200
# below a substitution: a partial answer ("人工" for 人工服务) is the better explanation
DELETE_COST = 0.8
INSERT_COST = 1.0
FILLER_COST = 0.35
SPELLING_MIN_RATIO = 0.7  # below: different words ("ten"/"queen" share letters, not sound)
EDGE_INSERT_COST = 0.5  # an extra word before or after the phrase: a cut-off word, a breath
FIRST_EDGE_COST = 0.3  # in the final score: the first extra word at an edge; the next ones cost 1
FILLERS = frozenset((
    "uh", "um", "er", "erm", "ah", "hmm", "mm", "please", "yeah", "the", "a", "an", "i'd",
    "like", "to", "want", "i",
))
# Chinese tokens are single characters, and "一" is also a digit: these count as filler alone,
# the pairs only together (一下, 那个, 我要): see _insert_costs.
_HAN_PAIRS = {("一", "下"), ("那", "个"), ("我", "要"), ("我", "想"), ("帮", "我")}
_HAN_SINGLE_FILLERS = frozenset("嗯啊呃哦喂请吧呢的")


class GrammarError(ValueError):
    """The grammar text is not usable; the message says where and why."""


@dataclass(slots=True)
class Automaton:
    """A word NFA: ``arcs[s]`` = [(token, t)], ``eps[s]`` = [t]; one start, one final."""

    arcs: list[list[tuple[str, int]]] = field(default_factory=list)
    eps: list[list[int]] = field(default_factory=list)
    start: int = 0
    final: int = 0

    def state(self) -> int:
        if len(self.arcs) >= MAX_STATES:
            raise GrammarError(f"grammar too large (over {MAX_STATES} states)")
        self.arcs.append([])
        self.eps.append([])
        return len(self.arcs) - 1

    def phrase(self, src: int, dst: int, words: tuple[str, ...]) -> None:
        """Arcs src -> ... -> dst spelling ``words`` (eps when empty)."""
        cur = src
        for w in words[:-1]:
            nxt = self.state()
            self.arcs[cur].append((w, nxt))
            cur = nxt
        if words:
            self.arcs[cur].append((words[-1], dst))
        else:
            self.eps[cur].append(dst)


@dataclass(frozen=True, slots=True)
class Grammar:
    """A compiled grammar. ``spotting``: the phrase may sit inside a longer sentence."""

    automaton: Automaton
    spotting: bool
    chinese: bool
    source: str = "jsgf"

    @property
    def size(self) -> int:
        return len(self.automaton.arcs)

    def phrases(self, limit: int = MAX_PHRASES_LISTED) -> list[str]:
        """Sentences of the grammar (breadth first, loops cut), for prompts and messages."""
        a = self.automaton
        out: list[str] = []
        queue: list[tuple[int, tuple[str, ...], frozenset[int]]] = [(a.start, (), frozenset())]
        while queue and len(out) < limit:
            s, words, seen = queue.pop(0)
            if s == a.final:
                text = ("" if self.chinese else " ").join(words)
                if text not in out:
                    out.append(text)
                continue
            if s in seen or len(queue) > 20 * limit:
                continue
            nxt = seen | {s}
            queue += [(t, words, nxt) for t in a.eps[s]]
            queue += [(t, (*words, w), nxt) for w, t in a.arcs[s]]
        return out

    def sentences(self, limit: int) -> list[str] | None:
        """Every sentence of a finite grammar, or None when it has a loop (``+``, ``*``) or more
        than ``limit`` sentences: the candidates forced scoring can afford to try one by one."""
        a = self.automaton
        out: list[str] = []
        stack: list[tuple[int, tuple[str, ...], frozenset[int]]] = [(a.start, (), frozenset())]
        while stack:
            s, words, seen = stack.pop()
            if s in seen:
                return None  # a cycle (through this path): infinitely many sentences
            if s == a.final:
                text = ("" if self.chinese else " ").join(words)
                if text not in out:
                    out.append(text)
                    if len(out) > limit:
                        return None
            nxt = seen | {s}
            stack += [(t, words, nxt) for t in reversed(a.eps[s])]
            stack += [(t, (*words, w), nxt) for w, t in reversed(a.arcs[s])]
        return out


# --- construction -------------------------------------------------------------------------------

_JSGF_TOKEN = re.compile(
    r"\s*(?:(?P<rule><[^<>\s]+>)|(?P<tag>\{[^}]*\})|(?P<weight>/[0-9.eE+-]+/)|"
    r"(?P<quoted>\"[^\"]*\")|(?P<op>[|()\[\]*+;=])|(?P<word>[^\s|()\[\]*+;=<>{}/\"]+))"
)


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _word_tokens(word: str, chinese: bool) -> list[tuple[str, ...]]:
    variants = [v for v in token_variants(word, chinese) if v]
    return variants or [()]


class _JsgfCompiler:
    def __init__(self, rules: dict[str, str], chinese: bool) -> None:
        self.rules = rules
        self.chinese = chinese
        self.a = Automaton()

    def rule(self, name: str, src: int, dst: int, depth: int) -> None:
        if name in ("<NULL>",):
            self.a.eps[src].append(dst)
            return
        if name == "<VOID>":
            return
        body = self.rules.get(name)
        if body is None:
            raise GrammarError(f"grammar: rule {name} is used but not defined")
        if depth > MAX_RULE_DEPTH:
            raise GrammarError(f"grammar: rule {name} is recursive (or nested over "
                               f"{MAX_RULE_DEPTH} deep)")
        toks = [m for m in _JSGF_TOKEN.finditer(body) if m.group(0).strip()]
        pos = self.alternatives(toks, 0, src, dst, depth + 1)
        if pos != len(toks):
            raise GrammarError(f"grammar: rule {name}: unexpected {toks[pos].group(0).strip()!r}")

    def alternatives(self, toks: list[re.Match[str]], pos: int, src: int, dst: int,
                     depth: int) -> int:
        while True:
            if pos < len(toks) and toks[pos].group("weight"):
                pos += 1  # weights are priors for a decoder; matching ignores them
            pos = self.sequence(toks, pos, src, dst, depth)
            if pos < len(toks) and toks[pos].group("op") == "|":
                pos += 1
                continue
            return pos

    def sequence(self, toks: list[re.Match[str]], pos: int, src: int, dst: int,
                 depth: int) -> int:
        cur = src
        empty = True
        while pos < len(toks):
            m = toks[pos]
            op = m.group("op")
            if op in ("|", ")", "]"):
                break
            if m.group("tag"):
                pos += 1
                continue
            a, b = self.a.state(), self.a.state()
            if op in {"(", "["}:
                close = ")" if op == "(" else "]"
                pos = self.alternatives(toks, pos + 1, a, b, depth)
                if pos >= len(toks) or toks[pos].group("op") != close:
                    raise GrammarError(f"grammar: missing {close!r}")
                pos += 1
                if op == "[":
                    self.a.eps[a].append(b)
            elif m.group("rule"):
                self.rule(m.group("rule"), a, b, depth)
                pos += 1
            elif m.group("word") or m.group("quoted"):
                text = (m.group("word") or m.group("quoted")[1:-1])
                for variant in _word_tokens(text, self.chinese):
                    self.a.phrase(a, b, variant)
                pos += 1
            else:
                raise GrammarError(f"grammar: unexpected {m.group(0).strip()!r}")
            while pos < len(toks) and toks[pos].group("op") in ("*", "+"):
                if toks[pos].group("op") == "*":
                    self.a.eps[a].append(b)
                self.a.eps[b].append(a)
                pos += 1
            self.a.eps[cur].append(a)
            cur = b
            empty = False
        if empty:
            raise GrammarError("grammar: empty alternative")
        self.a.eps[cur].append(dst)
        return pos


EN_DIGIT_WORDS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight",
                  "nine")
ZH_DIGIT_WORDS = tuple("零一幺二两三四五六七八九")


def digit_string_jsgf(language: str) -> str:
    """A JSGF grammar of digit strings as callers say them: English, Mandarin (with 幺 and 两),
    or both for ``auto``; :func:`asr.textnorm.digits_from_speech` turns a result into digits."""
    lang = language.strip().lower()
    zh = lang.startswith(("zh", "cmn", "yue"))
    words = ZH_DIGIT_WORDS if zh else EN_DIGIT_WORDS
    if lang == "auto":
        words = EN_DIGIT_WORDS + ZH_DIGIT_WORDS
    return f"#JSGF V1.0;\ngrammar digits;\npublic <digits> = ( {' | '.join(words)} )+ ;\n"


def from_jsgf(text: str) -> Grammar:
    """Compile JSGF text; every public rule is a sentence the grammar accepts."""
    body = _strip_comments(text)
    body = re.sub(r"^\s*#JSGF[^;]*;", "", body)
    body = re.sub(r"^\s*grammar\s+[^;]+;", "", body)
    if re.search(r"^\s*import\s", body, flags=re.M):
        raise GrammarError("grammar: 'import' is not supported (inline the rules)")
    rules: dict[str, str] = {}
    public: list[str] = []
    for stmt in body.split(";"):
        if not stmt.strip():
            continue
        m = re.match(r"\s*(public\s+)?(<[^<>\s]+>)\s*=(.*)\Z", stmt, flags=re.S)
        if m is None:
            raise GrammarError(f"grammar: cannot read rule {stmt.strip()[:60]!r} "
                               "(expected '[public] <name> = expansion;')")
        rules[m.group(2)] = m.group(3)
        if m.group(1):
            public.append(m.group(2))
    if not public:
        raise GrammarError("grammar: no public rule")
    chinese = has_han(body)
    comp = _JsgfCompiler(rules, chinese)
    a = comp.a
    a.start, a.final = a.state(), a.state()
    for name in public:
        comp.rule(name, a.start, a.final, 0)
    return Grammar(a, spotting=False, chinese=chinese, source="jsgf")


def from_phrases(phrases: list[str] | tuple[str, ...], *, spotting: bool = False) -> Grammar:
    """A grammar accepting exactly one of ``phrases`` (keywords: ``spotting=True``)."""
    cleaned = [p.strip() for p in phrases if p and p.strip()]
    if not cleaned:
        raise GrammarError("grammar: no phrases")
    chinese = any(has_han(p) for p in cleaned)
    a = Automaton()
    a.start, a.final = a.state(), a.state()
    for p in cleaned:
        variants = [v for v in token_variants(p, chinese) if v]
        if not variants:
            raise GrammarError(f"grammar: phrase {p!r} has no words")
        for v in variants:
            a.phrase(a.start, a.final, v)
    return Grammar(a, spotting=spotting, chinese=chinese,
                   source="keywords" if spotting else "phrases")


def parse_grammar(text: str) -> Grammar:
    """JSGF (``#JSGF`` header or a ``public <rule>``), a JSON list, or one phrase per line."""
    phrases = phrase_list(text)
    return from_jsgf(text.strip()) if phrases is None else from_phrases(phrases)


def phrase_list(text: str) -> list[str] | None:
    """The phrases of a grammar written as a JSON list or one phrase per line; None for JSGF
    (whose sentences are already the grammar's own words)."""
    stripped = text.strip()
    if stripped.startswith("#JSGF") or re.search(r"(public\s+<|<[^<>\s]+>\s*=)", stripped):
        return None
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise GrammarError(f"grammar: invalid JSON phrase list: {e}") from e
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise GrammarError("grammar: a JSON grammar must be a list of strings")
        return items
    return [line for line in stripped.splitlines() if line.strip()]


def as_written(phrases: list[str] | tuple[str, ...], text: str) -> str:
    """The phrase, as the flow wrote it, whose sentence in :func:`from_phrases`' grammar is
    ``text``; ``text`` itself when none is.

    Why: a phrase grammar holds its phrases normalised (幺/两 folded to 一/二, numerals read
    out, lower case), so a recogniser's result spells the sentence, not the phrase: the keyword
    两室一厅 comes back as 二室一厅, 10086 as 一万零八十六, "Press 1" as "press one". A menu
    node then looks for its keywords in that text and finds none (seen on real Mandarin
    callers, stop 31: 变温温度设为两度 was recognised and routed to no_match)."""
    cleaned = [p.strip() for p in phrases if p and p.strip()]
    chinese = any(has_han(p) for p in cleaned)
    for p in cleaned:
        if any(("" if chinese else " ").join(v) == text for v in token_variants(p, chinese)):
            return p
    return text


@functools.lru_cache(maxsize=256)
def compile_cached(text: str, spotting: bool = False) -> Grammar:
    """``parse_grammar`` (or keywords joined by newlines with ``spotting``), cached by text."""
    if spotting:
        return from_phrases(text.split("\n"), spotting=True)
    return parse_grammar(text)


# --- matching ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _pinyin(ch: str) -> str:
    try:
        from pypinyin import Style, lazy_pinyin  # noqa: PLC0415 - Chinese only
    except ImportError:
        return ch
    return lazy_pinyin(ch, style=Style.NORMAL)[0]


@functools.lru_cache(maxsize=65536)
def substitution_cost(expected: str, heard: str) -> float:
    """0 for the same token; by pinyin for Han characters; by spelling for words; at most 1."""
    if expected == heard:
        return 0.0
    if len(expected) == 1 and len(heard) == 1 and has_han(expected) and has_han(heard):
        pa, pb = _pinyin(expected), _pinyin(heard)
        if pa == pb:
            return 0.1
        return 1.0 - 0.5 * difflib.SequenceMatcher(None, pa, pb).ratio() if pa[0] == pb[0] else 1.0
    r = difflib.SequenceMatcher(None, expected, heard).ratio()
    return 1.0 - r if r >= SPELLING_MIN_RATIO else 1.0


def _insert_costs(hyp: tuple[str, ...]) -> list[float]:
    costs = [FILLER_COST if (h in FILLERS and not has_han(h)) or h in _HAN_SINGLE_FILLERS
             else INSERT_COST for h in hyp]
    for i in range(len(hyp) - 1):
        if (hyp[i], hyp[i + 1]) in _HAN_PAIRS:
            costs[i] = costs[i + 1] = FILLER_COST
    return costs


@dataclass(frozen=True, slots=True)
class GrammarMatch:
    """The grammar sentence closest to one hypothesis reading."""

    text: str  # the grammar's words along the best path (what the flow sees)
    words: tuple[str, ...]
    cost: float
    score: float  # 1 - cost / max(len(hypothesis), len(path)): 1.0 is an exact match
    heard: tuple[str, ...]  # the hypothesis tokens it was matched against
    spans: tuple[tuple[int, int], ...] = ()  # per grammar word: hypothesis token range


def match_tokens(grammar: Grammar, hyp: tuple[str, ...]) -> GrammarMatch:
    """Best path of ``grammar`` for the token sequence ``hyp`` (Dijkstra per position)."""
    a = grammar.automaton
    n = len(hyp)
    ins = _insert_costs(hyp)
    inf = float("inf")
    # cost[i][s]; back[(i, s)] = (i0, s0, word or None)
    cost: list[dict[int, float]] = [dict() for _ in range(n + 1)]
    back: dict[tuple[int, int], tuple[int, int, str | None]] = {}

    def edge_cost(s: int, i: int) -> float:
        if s not in (a.start, a.final):
            return ins[i]
        return 0.0 if grammar.spotting else min(ins[i], EDGE_INSERT_COST)

    cost[0][a.start] = 0.0
    for i in range(n + 1):
        layer = cost[i]
        heap = [(c, s) for s, c in layer.items()]
        heapq.heapify(heap)
        done: set[int] = set()
        while heap:
            c, s = heapq.heappop(heap)
            if s in done or c > layer.get(s, inf):
                continue
            done.add(s)
            for t in a.eps[s]:
                if c < layer.get(t, inf):
                    layer[t] = c
                    back[(i, t)] = (i, s, None)
                    heapq.heappush(heap, (c, t))
            for w, t in a.arcs[s]:  # grammar word not said
                nc = c + DELETE_COST
                if nc < layer.get(t, inf):
                    layer[t] = nc
                    back[(i, t)] = (i, s, w)
                    heapq.heappush(heap, (nc, t))
        if i == n:
            break
        nxt = cost[i + 1]
        h = hyp[i]
        for s, c in layer.items():
            step = edge_cost(s, i)
            if c + step < nxt.get(s, inf):  # an extra word
                nxt[s] = c + step
                back[(i + 1, s)] = (i, s, None)
            for w, t in a.arcs[s]:
                nc = c + substitution_cost(w, h)
                if nc < nxt.get(t, inf):
                    nxt[t] = nc
                    back[(i + 1, t)] = (i, s, w)
    total = cost[n].get(a.final, inf)
    if total == inf:
        return GrammarMatch("", (), inf, 0.0, hyp)
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    i, s = n, a.final
    while (i, s) != (0, a.start):
        i0, s0, arc = back[(i, s)]
        if arc is not None:
            words.append(arc)
            spans.append((i0, i))
        i, s = i0, s0
    words.reverse()
    spans.reverse()
    if not grammar.spotting and spans:
        # The path was found with a flat edge cost; score it with one cheap word at each edge (a
        # cut-off "or", "and" before the answer) and full cost beyond, so a whole sentence that
        # merely contains a menu phrase does not pass for the phrase.
        for edge in (range(spans[0][0]), range(spans[-1][1], n)):
            for j, k in enumerate(edge):
                charged = min(ins[k], EDGE_INSERT_COST)
                fair = min(ins[k], FIRST_EDGE_COST) if j == 0 else ins[k]
                total += fair - charged
    explained = n
    if grammar.spotting and spans:
        explained = max(1, spans[-1][1] - spans[0][0])
    denom = max(explained, len(words), 1)
    text = ("" if grammar.chinese else " ").join(words)
    return GrammarMatch(text, tuple(words), total, max(0.0, 1.0 - total / denom), hyp,
                        tuple(spans))


def match_text(grammar: Grammar, text: str) -> GrammarMatch:
    """Best match over the readings of ``text`` (numerals as quantities or digit by digit)."""
    best: GrammarMatch | None = None
    for variant in token_variants(text, grammar.chinese or None):
        m = match_tokens(grammar, variant)
        if best is None or m.score > best.score:
            best = m
    assert best is not None
    return best


def heard_tokens(text: str) -> list[str]:
    """What the hypothesis says, as tokens (for words/timings in results)."""
    return tokens(text)
