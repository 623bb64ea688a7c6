"""First contact: greeting, language, consent, menu; language switching; unexpected input."""

from __future__ import annotations

from bot.offline import BotClient


async def test_new_user_is_greeted_in_ukrainian_and_asked_for_language(make_client) -> None:
    client: BotClient = make_client(language_code="de")
    replies = await client.send("/start")
    assert len(replies) == 1
    assert "Вітаємо" in replies[0].text
    assert replies[0].buttons() == ["🇺🇦 Українська", "🇬🇧 English"]


async def test_choosing_english_then_consent_shows_english_menu(make_client) -> None:
    client = make_client()
    await client.send("/start")
    replies = await client.click("English")
    assert any(r.kind == "toast" and "English" in r.text for r in replies)
    consent = next(r for r in replies if r.kind == "message")
    assert "Consent to processing" in consent.text
    replies = await client.click("I agree")
    menu = next(r for r in replies if r.kind == "message")
    assert menu.keyboard and any("New request" in t for row in menu.keyboard for t in row)


async def test_declining_consent_offers_only_public_information(make_client) -> None:
    client = make_client()
    await client.send("/start")
    await client.click("Українська")
    replies = await client.click("Не зараз")
    buttons = [t for row in (client.keyboard or []) for t in row]
    assert any("Послуги" in t for t in buttons)
    assert not any("Нове звернення" in t for t in buttons)
    assert any("Без згоди" in r.text for r in replies)


async def test_language_command_switches_and_is_remembered(make_client) -> None:
    client = make_client()
    await client.send("/start")
    await client.click("Українська")
    await client.click("Погоджуюсь")
    await client.send("/language")
    replies = await client.click("English")
    assert any("Language set to English" in r.text for r in replies)
    replies = await client.send("/help")
    assert "I connect you" in replies[0].text
    # An old Ukrainian keyboard button still works after the switch.
    replies = await client.send("❓ Допомога")
    assert "I connect you" in replies[0].text


async def test_stickers_voice_and_unknown_commands_get_polite_answers(make_client) -> None:
    client = make_client()
    await client.send("/start")
    await client.click("Українська")
    assert "не можу передати" in (await client.send_sticker())[0].text
    # A voice message is understood now; before consent nothing is kept, consent is asked for.
    assert "потрібна ваша згода" in (await client.send_voice())[0].text
    assert "Такої команди немає" in (await client.send("/nonsense"))[0].text


async def test_forged_callback_data_is_refused_politely(make_client) -> None:
    client = make_client()
    await client.send("/start")
    replies = await client.click_data("lang:xx")
    assert replies and replies[0].kind == "alert"
    replies = await client.click_data("garbage-data")
    assert replies and replies[0].kind == "alert"


async def test_my_data_and_forget_me_erase_personal_data_but_keep_audit(make_client, sessionmaker) -> None:
    from sqlalchemy import select

    from models import AuditEntry, Resident

    client = make_client()
    await client.send("/start")
    await client.click("English")
    await client.click("I agree")
    replies = await client.send("/my_data")
    assert "Consent to data processing: given on" in replies[0].text
    assert "0 requests" in replies[0].text
    await client.send("/forget_me")
    replies = await client.click("No, keep it")
    assert any("nothing was erased" in r.text for r in replies)
    await client.send("/forget_me")
    replies = await client.click("Yes, erase")
    assert any("Your data is erased" in r.text for r in replies)
    async with sessionmaker() as session:
        resident = await session.scalar(select(Resident))
        assert resident is not None and resident.consent_at is None and resident.erased_at is not None
        assert await session.scalar(
            select(AuditEntry.action).where(AuditEntry.action == "personal_data_erased")
        )
    replies = await client.send("/my_data")
    assert "not given" in replies[0].text
