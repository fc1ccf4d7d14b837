"""SMS coding and concatenation (3GPP TS 23.038 / 23.040): where the part boundaries fall and
what goes on the wire, including the characters that take two units."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify.encoding import (
    DATA_CODING_GSM7,
    DATA_CODING_UCS2,
    GSM_BASIC,
    EncodingError,
    concat_udh,
    decode_payload,
    gsm7_decode,
    gsm7_encode,
    parse_concat_udh,
    plan,
)


def test_the_default_alphabet_has_128_septets() -> None:
    assert len(GSM_BASIC) == 128
    assert gsm7_encode("@") == b"\x00" and gsm7_encode("à") == b"\x7f"


@pytest.mark.parametrize(("n", "parts"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3),
                                          (202, 4)])
def test_chinese_is_70_single_then_67_per_part(n: int, parts: int) -> None:
    p = plan("短" * n)
    assert p.coding == "ucs2" and p.data_coding == DATA_CODING_UCS2
    assert p.part_count == parts
    if parts > 1:
        assert all(len(t) == 67 for t in p.texts[:-1])


@pytest.mark.parametrize(("n", "parts"), [(160, 1), (161, 2), (306, 2), (307, 3)])
def test_gsm_is_160_single_then_153_per_part(n: int, parts: int) -> None:
    p = plan("a" * n)
    assert p.coding == "gsm7" and p.data_coding == DATA_CODING_GSM7
    assert p.part_count == parts


def test_one_non_gsm_character_makes_the_whole_message_ucs2() -> None:
    assert plan("Your code is 1234" + "。").coding == "ucs2"
    assert plan("Your code is 1234").coding == "gsm7"


def test_extension_characters_count_two_and_are_never_cut() -> None:
    assert plan("€" * 80).part_count == 1  # 160 septets
    p = plan("a" * 152 + "€" + "b" * 10)  # the escape pair would straddle septet 153
    assert p.texts[0] == "a" * 152 and p.texts[1] == "€" + "b" * 10
    assert gsm7_encode("€[") == bytes((0x1B, 0x65, 0x1B, 0x3C))
    assert gsm7_decode(gsm7_encode("{x}~|^\\")) == "{x}~|^\\"


def test_surrogate_pairs_count_two_and_are_never_cut() -> None:
    assert plan("😀" * 35).part_count == 1  # 70 UTF-16 units
    p = plan("好" * 66 + "😀" + "好" * 10)  # the pair would straddle unit 67
    assert p.texts[0] == "好" * 66 and p.texts[1].startswith("😀")
    assert p.payloads()[1][:4] == "😀".encode("utf-16-be")


def test_udh_carries_reference_total_sequence() -> None:
    p = plan("长" * 140)
    parts = p.short_messages(reference=0x2A)
    assert [m[:6] for m in parts] == [bytes((5, 0, 3, 0x2A, 3, i)) for i in (1, 2, 3)]
    assert all(len(m) <= 140 for m in parts)
    ref, payload = parse_concat_udh(parts[2])
    assert ref == (0x2A, 3, 3) and decode_payload(8, payload) == "长" * 6


def test_a_single_message_has_no_udh() -> None:
    assert plan("你好").short_messages(7) == ["你好".encode("utf-16-be")]


def test_16_bit_reference_udh_is_understood() -> None:
    ref, payload = parse_concat_udh(bytes((6, 8, 4, 0x12, 0x34, 2, 1)) + b"hi")
    assert ref == (0x1234, 2, 1) and payload == b"hi"


@pytest.mark.parametrize("bad", [b"", bytes((9, 0, 3))])
def test_truncated_udh_is_an_error(bad: bytes) -> None:
    with pytest.raises(EncodingError):
        parse_concat_udh(bad)


def test_empty_and_oversized_texts_are_refused() -> None:
    with pytest.raises(EncodingError, match="empty"):
        plan("")
    with pytest.raises(EncodingError, match="parts"):
        plan("字" * 67 * 256)
    with pytest.raises(EncodingError, match="reference"):
        concat_udh(256, 2, 1)


@given(st.text(min_size=1, max_size=600))
def test_parts_put_back_together_are_the_text(text: str) -> None:
    p = plan(text)
    assert "".join(p.texts) == text
    limit = 140 - (6 if p.concatenated else 0)
    for payload in p.payloads():
        assert len(payload) <= limit
    decoded = "".join(decode_payload(p.data_coding, b) for b in p.payloads())
    assert decoded == text
