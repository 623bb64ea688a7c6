"""The form's first step by village name, through the real dispatcher: the resident types the
village as they know it, picks it among namesakes (each shown with its hromada and raion), and
the hromada follows; Back from the service returns to the search; a hromada chosen instead keeps
the settlement step."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.offline import BotClient
from models import Case, Hromada, Settlement
from services.places import load_codifier, read_codifier
from services.text import alphabetical

DESCRIPTION = "Потрібна допомога з оформленням субсидії на зиму."


@pytest.fixture(scope="module")
def zaporizka():
    return read_codifier(["UA23"])


@pytest.fixture
async def codifier(sessionmaker, reference, zaporizka) -> None:
    async with sessionmaker.begin() as s:
        await load_codifier(s, zaporizka)


async def test_filing_by_village_name_among_namesakes(resident: BotClient, sessionmaker, codifier) -> None:
    replies = await resident.press("Нове звернення")
    assert "Крок 1" in replies[-1].text and "села" in replies[-1].text
    replies = await resident.send("с. миколаiвка")  # a prefix, lower case, a Latin "i"
    buttons = replies[-1].buttons()
    ours = "📍 с. Миколаївка — Берестівська громада, Бердянський р-н"
    assert any(b.startswith(ours) for b in buttons)  # with its oblast: the YAML's Donetsk one is there too
    namesakes = [b for b in buttons if b.startswith("📍 с. Миколаївка — ")]
    assert len(namesakes) >= 3 and len(set(namesakes)) == len(namesakes)  # told apart
    assert "📍 — населений пункт" in replies[-1].text

    replies = await resident.click(ours)
    assert "Крок 3" in replies[-1].text and "Миколаївка" in replies[-1].text and "обрано" in replies[-1].text
    # Back from the service goes back to the search, not to a settlement list.
    replies = await resident.click("Назад")
    assert "Крок 1" in replies[-1].text
    assert replies[-1].buttons()[:2] == [ours, "🏛 Берестівська громада"]
    replies = await resident.send("Миколаївка Берестівська")
    assert [b for b in replies[-1].buttons() if b.startswith("📍")] == [ours]
    await resident.click(ours)
    await resident.click("Житлова субсидія")
    await resident.click("Далі")
    await resident.send(DESCRIPTION)
    await resident.click("Без файлів")
    await resident.click("Для себе")
    await resident.share_contact("380501234567")
    replies = await resident.click("Надіслати звернення")
    assert any("прийнято" in r.text.casefold() or "№" in r.text for r in replies)

    async with sessionmaker() as s:
        case = await s.scalar(select(Case))
        assert case is not None
        settlement = await s.get(Settlement, case.settlement_id)
        hromada = await s.get(Hromada, case.hromada_id)
    assert settlement is not None and settlement.katottg == "UA23020070060099471"
    assert hromada is not None and hromada.code == "BRS"


async def test_typed_with_a_typo_and_another_apostrophe(resident: BotClient, codifier) -> None:
    await resident.press("Нове звернення")
    replies = await resident.send("Новокамянка")  # Новокам’янка, Комиш-Зорянська громада
    assert any(b.startswith("📍 с. Новокам’янка — Комиш-Зорянська громада") for b in replies[-1].buttons())
    replies = await resident.send("Берестовее")
    assert any(b.startswith("📍 с. Берестове — Берестівська громада") for b in replies[-1].buttons())


async def test_an_occupied_hromada_is_refused_when_its_village_is_chosen(
    resident: BotClient, codifier
) -> None:
    await resident.press("Нове звернення")
    await resident.send("Комиш-Зоря")
    replies = await resident.click("📍 с-ще Комиш-Зоря")
    assert replies[0].kind == "alert" and "де ви живете зараз" in replies[0].text


async def test_a_hromada_chosen_in_the_search_keeps_the_settlement_step(
    resident: BotClient, codifier
) -> None:
    await resident.press("Нове звернення")
    replies = await resident.send("Берестівська")
    assert replies[-1].buttons()[0] == "🏛 Берестівська громада"
    replies = await resident.click("🏛 Берестівська громада")
    assert "Крок 2" in replies[-1].text and "Миколаївка" in replies[-1].buttons()
    replies = await resident.click("Миколаївка")
    assert "Крок 3" in replies[-1].text
    replies = await resident.click("Назад")
    assert "Крок 2" in replies[-1].text


async def test_a_forged_settlement_button_is_refused(resident: BotClient, codifier) -> None:
    from handlers.kit.callbacks import IntakeCb

    await resident.press("Нове звернення")
    replies = await resident.click_data(IntakeCb(action="ps", value="999999").pack())
    assert replies[0].kind == "alert"


def settlement_buttons(buttons: list[str]) -> list[str]:
    return [b for b in buttons if not any(w in b for w in ("Наступні", "Попередні", "Назад", "Скасувати"))]


async def test_a_long_settlement_list_is_paged_and_a_name_may_be_typed(
    resident: BotClient, sessionmaker, codifier
) -> None:
    # Novomykolaivska hromada has 54 settlements: more than a phone shows at once.
    await resident.press("Нове звернення")
    await resident.send("Новомиколаївська")
    replies = await resident.click("🏛 Новомиколаївська громада")
    screen = replies[-1]
    assert "Крок 2" in screen.text and "Сторінка 1 з 3" in screen.text and "Напишіть назву" in screen.text
    first_page = settlement_buttons(screen.buttons())
    assert len(first_page) == 24 and "Наступні ▶" in screen.buttons()
    assert "◀ Попередні" not in screen.buttons()

    replies = await resident.click("Наступні ▶")
    second = replies[-1]
    assert "Сторінка 2 з 3" in second.text
    assert "◀ Попередні" in second.buttons() and "Наступні ▶" in second.buttons()
    assert not set(first_page) & set(settlement_buttons(second.buttons()))
    replies = await resident.click("Наступні ▶")
    third = replies[-1]
    assert "Сторінка 3 з 3" in third.text and "Наступні ▶" not in third.buttons()
    on_pages = first_page + settlement_buttons(second.buttons()) + settlement_buttons(third.buttons())
    async with sessionmaker() as s:
        hromada = await s.scalar(select(Hromada).where(Hromada.name_uk == "Новомиколаївська"))
        assert hromada is not None
        names = (await s.scalars(select(Settlement.name_uk).where(Settlement.hromada_id == hromada.id))).all()
    assert len(names) == 54 and sorted(on_pages) == sorted(names), "every settlement on one page"
    # In the alphabet's order (on SQLite "Іванівське" used to come before "Берестове").
    assert on_pages == sorted(on_pages, key=alphabetical)
    assert on_pages.index("Іванівське") > on_pages.index("Берестове")

    # Typed as a person types it (lower case, a Latin "i"): one exact match is taken.
    last = [n for n in on_pages if names.count(n) == 1 and "і" in n][-1]
    replies = await resident.send(last.lower().replace("і", "i"))
    assert "Крок 3" in replies[-1].text
    replies = await resident.click("Назад")
    assert "Крок 2" in replies[-1].text and "Сторінка 1 з 3" in replies[-1].text


async def test_a_typed_settlement_name_is_matched_within_the_hromada(resident: BotClient, codifier) -> None:
    await resident.press("Нове звернення")
    await resident.send("Берестівська")
    replies = await resident.click("🏛 Берестівська громада")
    assert "Сторінка" not in replies[-1].text, "11 settlements fit on one screen"

    # Not in this hromada: said plainly, with the way back to the list.
    replies = await resident.send("Лондон")
    assert "немає в переліку" in replies[-1].text and "Берестівська громада" in replies[-1].text
    assert "📋 Увесь список" in replies[-1].buttons()
    replies = await resident.click("📋 Увесь список")
    assert "Миколаївка" in replies[-1].buttons()

    # The beginning of a name, and a typo: offered as buttons, not taken on trust.
    replies = await resident.send("мал")
    assert replies[-1].buttons()[0] == "Малинівка"
    replies = await resident.send("Радивонвка")  # a letter missing
    assert replies[-1].buttons()[0] == "Радивонівка"
    # Too short, a sticker: a polite answer, the step stays.
    replies = await resident.send("М")
    assert "від 2 до 60 символів" in replies[-1].text
    replies = await resident.send_sticker()
    assert "потрібен текст" in replies[-1].text
    replies = await resident.click("Радивонівка")
    assert "Крок 3" in replies[-1].text


async def test_the_help_needed_may_be_said_in_words(resident: BotClient, sessionmaker, codifier) -> None:
    await resident.press("Нове звернення")
    await resident.send("Берестівська")
    await resident.click("🏛 Берестівська громада")
    await resident.click("Миколаївка")
    # Said the way people say it: one service clearly named is taken, and Back undoes it.
    replies = await resident.send("Треба дрова на зиму")
    assert "Зрозумів: <b>Гуманітарна допомога</b>" in replies[-1].text and "Крок 4" in replies[-1].text
    replies = await resident.click("Назад")
    assert "Крок 3" in replies[-1].text
    # A common word alone decides nothing: the likely ones are offered, and the whole list.
    replies = await resident.send("допомога")
    offered = replies[-1].buttons()
    assert "оберіть, будь ласка" in replies[-1].text
    assert {"Соціальна допомога", "Гуманітарна допомога"} <= set(offered) and "📋 Усі послуги" in offered
    # Nothing understood: said plainly; the whole list is one press away.
    replies = await resident.send("щось незрозуміле")
    assert "Не зрозумів" in replies[-1].text
    replies = await resident.click("📋 Усі послуги")
    assert "Крок 3" in replies[-1].text and "Житлова субсидія" in replies[-1].buttons()
    # A whole story told here is the description in waiting, kept with one tap.
    story = "Мамі 82 роки, вона сама вдома і вже не ходить до магазину. Потрібен догляд вдома."
    replies = await resident.send(story)
    assert "Догляд вдома" in replies[-1].text and "Крок 4" in replies[-1].text
    # Circumstances in words: ticked and shown, to untick or go on.
    replies = await resident.send("вона живе сама, на візку")
    assert "Позначено: Літня людина, живе сама, Інвалідність" in replies[-1].text
    assert {"✅ Літня людина, живе сама", "✅ Інвалідність"} <= set(replies[-1].buttons())
    assert "кнопками" in (await resident.send("хтозна"))[-1].text
    replies = await resident.click("Далі")
    assert "Крок 5" in replies[-1].text and "вже не ходить до магазину" in replies[-1].text
    replies = await resident.click("Залишити")
    assert "Крок 6" in replies[-1].text
    await resident.click("Без файлів")
    # For whom, in words too.
    assert "кнопками" in (await resident.send("не знаю"))[-1].text
    replies = await resident.send("для мами")
    assert "ім'я та прізвище людини" in replies[-1].text
    await resident.click("Назад")
    replies = await resident.send("для себе")
    assert "Крок 8" in replies[-1].text
