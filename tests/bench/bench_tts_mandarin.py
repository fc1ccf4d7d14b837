"""Mandarin prompts: round trip through whisper base, first-audio latency, real-time factor.

    PYTHONPATH=. nice -n 10 .venv/bin/python -m tests.bench.bench_tts_mandarin [--voices a,b]

Each voice (``kokoro:<name>`` or ``espeak:cmn``) speaks the notification flow's Mandarin prompts
(examples/campaigns/notification_flow.json, variables filled) and 30 varied IVR and everyday
sentences; the audio goes through 8 kHz G.711 as on a call and whisper base (the engine's
Mandarin recogniser) writes what it heard. Character accuracy = 1 - CER, numerals compared in
whichever reading (digits or characters) fits. Syllable accuracy compares the pinyin of what
was said and what was heard (with tones, and without): whisper base's language model often
writes a homophone (快递 -> 快弟, 井号键 -> 警号见), which is a character error although the
sounds were right; the syllable figures separate the voice's errors from the recogniser's. Latency:
a fresh render (no cache) of the first clause (what a streaming player would wait for) and of the
whole prompt; RTF = render time / audio duration. Kokoro runs with ``tts.kokoro_threads``
onnxruntime threads (default 1).
"""

from __future__ import annotations

import argparse
import statistics
import time

from asr.textnorm import token_variants, tokens
from asr.tts import TtsService, kokoro
from audio.resample import to_16k
from tests import speech_data as sd

FLOW = (
    "张先生您好，这里是示例燃气公司。您本期燃气费128元，请于12月15日前缴纳。",
    "确认收到请按1或说收到，重听请按2，转人工请按0，不再接收此类通知请按9。",
    "抱歉，没有听到您的选择。",
    "抱歉，没有听清。",
    "感谢您的确认，再见。",
    "正在为您转接人工服务。",
    "好的，我们将不再给您拨打此类电话。",
    "再见。",
)
VARIED = (
    "您好，欢迎致电中国移动客户服务热线。",
    "查询话费余额请按一，办理业务请按二。",
    "您的账户余额为三十五元六角。",
    "请输入您的六位服务密码，以井号键结束。",
    "密码输入错误，请重新输入。",
    "系统繁忙，请稍后再拨。",
    "您的快递已经到达小区门口的快递柜。",
    "明天北京晴转多云，最高气温十八度。",
    "本次通话可能会被录音，以便提高服务质量。",
    "如需投诉或建议，请在提示音后留言。",
    "您预约的挂号时间是下周三上午九点。",
    "您的信用卡本月账单已出，请按时还款。",
    "为了保障您的账户安全，请不要向任何人透露验证码。",
    "您好，请问是李女士吗？",
    "我们的营业时间是每天早上八点到晚上十点。",
    "退订本业务请回复数字零。",
    "您的订单已经发货，预计三天内送达。",
    "请您对本次服务进行评价，满意请按一，不满意请按二。",
    "当前排队人数较多，请耐心等待。",
    "您拨打的电话暂时无法接通。",
    "感谢您的耐心等待，客服代表马上为您服务。",
    "您的宽带将于本月底到期，请及时续费。",
    "银行卡挂失请按三，修改密码请按四。",
    "今天是2026年11月30日，星期一。",
    "请在听到提示音后说出您要办理的业务。",
    "您的积分可以兑换话费或者流量。",
    "电费已经扣款成功，谢谢您的支持。",
    "如果您对账单有疑问，可以咨询人工客服。",
    "这个月的水费比上个月多了二十元。",
    "祝您生活愉快，再见。",
)


def char_errors(reference: str, heard: str) -> tuple[int, int]:
    ref = "".join(tokens(kokoro.normalise_mandarin(reference)))
    return min(sd.edit_distance(ref, "".join(v))
               for v in token_variants(heard, chinese=True)), len(ref)


def syllable_errors(reference: str, heard: str, tone: bool) -> tuple[int, int]:
    """(syllable edits, reference syllables) over the pinyin of both texts."""
    from pypinyin import Style, lazy_pinyin

    style = Style.TONE3 if tone else Style.NORMAL

    def syl(text: str) -> list[str]:
        return lazy_pinyin(text, style=style, neutral_tone_with_five=True)

    ref = syl("".join(tokens(kokoro.normalise_mandarin(reference))))
    return min(sd.edit_distance(ref, syl("".join(v)))
               for v in token_variants(heard, chinese=True)), len(ref)


def main() -> None:
    from asr.models import get_engine

    ap = argparse.ArgumentParser()
    ap.add_argument("--voices", default="kokoro:zf_xiaobei,espeak:cmn")
    ap.add_argument("--quick", action="store_true", help="flow prompts + 12 varied sentences")
    ap.add_argument("--threads", type=int, default=1, help="Kokoro onnxruntime threads")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    eng = get_engine("whisper-base", workers=2)
    sets = (("flow", FLOW), ("varied", VARIED[:12] if args.quick else VARIED))
    t0 = time.perf_counter()
    kokoro.load(None, args.threads)
    print(f"Kokoro load {time.perf_counter() - t0:.2f} s")
    for voice in args.voices.split(","):
        svc = TtsService(None, kokoro_threads=args.threads)
        acc = {}
        syl_err = [0, 0, 0]  # toned edits, toneless edits, syllables
        renders: list[float] = []
        firsts: list[float] = []
        rtfs: list[float] = []
        for name, texts in sets:
            edits = chars = 0
            for text in texts:
                t0 = time.perf_counter()
                pcm = svc.render(text, voice=voice, language="zh-CN").pcm
                took = time.perf_counter() - t0
                renders.append(took)
                rtfs.append(took / (len(pcm) / 8000))
                if voice.startswith("kokoro:"):
                    t0 = time.perf_counter()
                    next(kokoro.stream(text, voice.split(":", 1)[1], threads=args.threads))
                    firsts.append(time.perf_counter() - t0)
                d = eng.decode(to_16k(sd.phone(pcm, 8000)), language="zh")  # type: ignore[attr-defined]
                heard = d.hypotheses[0].text if d.hypotheses else ""
                e, n = char_errors(text, heard)
                edits, chars = edits + e, chars + n
                toned, ns = syllable_errors(text, heard, True)
                toneless, _ = syllable_errors(text, heard, False)
                syl_err = [syl_err[0] + toned, syl_err[1] + toneless, syl_err[2] + ns]
                if args.verbose:
                    print(f"  {e:2d}/{n:2d} {text} -> {heard}")
            acc[name] = (edits, chars)
        e = sum(a for a, _ in acc.values())
        n = sum(b for _, b in acc.values())
        parts = ", ".join(f"{k} {1 - a / b:.1%} ({b} chars)" for k, (a, b) in acc.items())
        line = (f"{voice:18s} characters {1 - e / n:.1%} [{parts}], syllables "
                f"{1 - syl_err[0] / syl_err[2]:.1%} (toneless {1 - syl_err[1] / syl_err[2]:.1%}); "
                f"render p50 "
                f"{statistics.median(renders) * 1000:.0f} ms p95 "
                f"{sorted(renders)[int(0.95 * (len(renders) - 1))] * 1000:.0f} ms, "
                f"RTF p50 {statistics.median(rtfs):.2f}")
        if firsts:
            line += (f", first clause p50 {statistics.median(firsts) * 1000:.0f} ms "
                     f"max {max(firsts) * 1000:.0f} ms")
        print(line, flush=True)


if __name__ == "__main__":
    main()
