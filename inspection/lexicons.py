"""Built-in complaint and sentiment lexicons, Mandarin and English.

Phrases, not single ambiguous words: "complaint" should fire on 我要投诉 / "I want to make a
complaint", not on every "problem". Tenants add their own with a rule's ``phrases``. Matching is
by :mod:`inspection.textmatch` (normalised tokens; Chinese by character), so punctuation, case
and traditional characters do not matter.

No sentiment model is bundled: no offline Chinese+English sentiment model ships in a package
reachable here, and a lexicon's hits can be shown as evidence, a model's score cannot.
"""

from __future__ import annotations

LEXICONS: dict[str, tuple[str, ...]] = {
    "complaint": (
        # zh
        "投诉", "我要投诉", "举报", "消费者协会", "消协", "工信部", "12315", "曝光", "媒体",
        "律师", "起诉", "退款", "太差了", "什么破", "骗子", "欺骗", "乱扣费", "不满意",
        # en
        "complaint", "complain", "file a complaint", "make a complaint", "report you",
        "speak to a manager", "supervisor", "lawyer", "sue", "refund", "unacceptable",
        "want my money back", "money back",
        "ripped off", "scam", "rip off", "ridiculous", "terrible service", "cancel my account",
    ),
    "negative": (
        "生气", "烦", "失望", "糟糕", "太慢", "没用", "垃圾", "受不了", "别再打", "不要再打",
        "angry", "annoyed", "frustrated", "disappointed", "useless", "waste of time",
        "stop calling", "fed up", "awful", "horrible", "hate",
    ),
    "positive": (
        "谢谢", "感谢", "满意", "很好", "太好了", "不错", "辛苦了",
        "thank you", "thanks", "great", "perfect", "excellent", "appreciate", "helpful",
    ),
    "greeting": ("您好", "你好", "欢迎致电", "hello", "welcome", "good morning",
                 "good afternoon", "thank you for calling"),
    "closing": ("再见", "祝您", "还有什么", "goodbye", "bye", "have a nice day",
                "anything else"),
}


def lexicon(name: str) -> tuple[str, ...]:
    try:
        return LEXICONS[name]
    except KeyError:
        raise ValueError(f"lexicon: {name!r} is not one of {', '.join(LEXICONS)}") from None
