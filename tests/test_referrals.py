"""Referrals to partner agencies, through the real dispatcher on both databases: a worker refers
a part of a case; the in-bot partner sees only that part and answers; an external partner's
answer is recorded by the worker; the resident sees it all in plain words; a partner member
cannot open anything else of the case."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiogram.methods import SendDocument
from sqlalchemy import select

from models import Attachment, Case, CaseEvent, OutboxMessage, PartnerAgency, Referral
from models.people import ROLE_COORDINATOR
from services.clock import FrozenClock
from tests.factories import add_resident, add_worker
from tests.test_case_actions import make_case

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
NOT_FOUND = "Звернення не знайдено або у вас немає до нього доступу."
EMPLOYMENT = "Полтавський обласний центр зайнятості"
PENSION = "Сервісний центр Пенсійного фонду в Пирятині"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def _setup(sessionmaker):
    """A Pyriatyn case (pyr-cnap) with two files; its worker; two members of the employment
    centre's team (one a coordinator there)."""
    owner = await add_resident(sessionmaker, 3001)
    await add_worker(sessionmaker, 3101, "pyr-cnap", display_name="Oksana")
    await add_worker(sessionmaker, 3201, "pl-employment", display_name="Partner")
    await add_worker(sessionmaker, 3202, "pl-employment", role=ROLE_COORDINATOR, display_name="PartnerBoss")
    case_id = await make_case(
        sessionmaker, owner, team="pyr-cnap", hromada="PYR", service="social_assistance"
    )
    async with sessionmaker.begin() as session:
        for name in ("dovidka.pdf", "secret.pdf"):
            session.add(
                Attachment(
                    case_id=case_id,
                    kind="document",
                    file_id=f"file-{name}",
                    file_unique_id=f"u-{name}",
                    file_name=name,
                    at=NOW,
                )
            )
    return owner, case_id


async def _refer(worker, case_id: int, partner: str, subject: str, *files: str):
    card = next(r for r in await worker.click_data(f"case:open:{case_id}") if r.kind == "message")
    assert "🤝 Направити партнеру" in card.buttons()
    overview = (await worker.click("Направити партнеру", message_id=card.message_id))[-1]
    await worker.click(partner, message_id=overview.message_id)
    confirm = (await worker.send(subject))[-1]
    assert "Опис, листування та інші документи партнер не побачить" in confirm.text
    for name in files:
        await worker.click(name, message_id=confirm.message_id)
    return await worker.click("Надіслати направлення", message_id=confirm.message_id)


async def test_in_bot_partner_sees_only_the_referred_part_and_answers(
    make_client, reference, sessionmaker, deliverer, tg
) -> None:
    _, case_id = await _setup(sessionmaker)
    worker = make_client(user_id=3101)
    card = next(r for r in await worker.click_data(f"case:open:{case_id}") if r.kind == "message")
    overview = (await worker.click("Направити партнеру", message_id=card.message_id))[-1]
    # Partners serving Pyriatynska and social assistance first (➕), others after.
    assert overview.buttons()[0].startswith("➕ ") and any(EMPLOYMENT in b for b in overview.buttons())
    assert any(b.startswith("▫️ ") for b in overview.buttons())  # the children's service: not this service

    replies = await _refer(worker, case_id, EMPLOYMENT, "Допоможіть мешканці знайти роботу", "dovidka.pdf")
    assert any(r.kind == "toast" and "надіслано" in r.text for r in replies)
    await deliverer.deliver_due()

    partner = make_client(user_id=3201)
    received = partner.read()
    notice = next(r for r in received if "Нове направлення" in r.text)
    assert "Допоможіть мешканці знайти роботу" in notice.text and "Пирятин" in notice.text
    # Never the description, never the phone (not ticked), only the chosen file.
    everything = "\n".join(r.text for r in received)
    assert "Потрібна допомога" not in everything and "+380501112233" not in everything
    files = [
        c.method.document for c in tg.calls if isinstance(c.method, SendDocument) and c.method.chat_id == 3201
    ]
    assert files == ["file-dovidka.pdf"]

    # Accept, then report the outcome.
    replies = await partner.click("Прийняти", message_id=notice.message_id)
    assert any(r.kind == "toast" and "збережено" in r.text for r in replies)
    await partner.click("Повідомити результат", message_id=notice.message_id)
    replies = await partner.send("Мешканку взято на облік, запропоновано три вакансії")
    assert any("є результат" in r.text for r in replies)
    await deliverer.deliver_due()

    # The referring worker hears both answers.
    told = "\n".join(r.text for r in worker.read())
    assert "прийнято в роботу" in told and "три вакансії" in told
    # The resident: pushes and the history in "My requests", in plain words.
    resident = make_client(user_id=3001)
    pushed = "\n".join(r.text for r in resident.read())
    assert "направлено до установи-партнера" in pushed and "прийняла направлення" in pushed
    assert "три вакансії" in pushed
    history = (await resident.click_data(f"my:open:{case_id}:0"))[-1].text
    assert f"направлено до установи-партнера: {EMPLOYMENT}" in history
    assert "направлення прийнято" in history and "результат — Мешканку взято на облік" in history
    # The worker's card lists it in its history too.
    card = next(r for r in await worker.click_data(f"case:open:{case_id}") if r.kind == "message")
    assert "направлено партнерові" in card.text and "партнер повідомив результат" in card.text
    async with sessionmaker() as session:
        kinds = (await session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case_id))).all()
        assert {"referral_sent", "referral_accepted", "referral_outcome"} <= set(kinds)


async def test_partner_cannot_open_the_rest_of_the_case(
    make_client, reference, sessionmaker, deliverer
) -> None:
    _, case_id = await _setup(sessionmaker)
    await _refer(make_client(user_id=3101), case_id, EMPLOYMENT, "Потрібна консультація щодо роботи")
    async with sessionmaker() as session:
        referral = await session.scalar(select(Referral))
    for user_id in (3201, 3202):  # a member and a coordinator of the partner team
        partner = make_client(user_id=user_id)
        view = (await partner.click_data(f"ref:view:0:{referral.id}:0"))[-1]
        assert "Потрібна консультація" in view.text and "Потрібна допомога" not in view.text
        for action in ("open", "history", "files", "write", "take", "status", "docs", "transfer"):
            mine = await partner.click_data(f"case:{action}:{case_id}")
            missing = await partner.click_data(f"case:{action}:987654")
            assert (
                [(r.kind, r.text) for r in mine]
                == [(r.kind, r.text) for r in missing]
                == [("alert", NOT_FOUND)]
            )
        # Writing to the resident, a visit, the case's referral list: refused as well.
        for data in (f"vnew:{case_id}", f"ref:new:{case_id}:0:0", f"wdoc:{case_id}:passport:0"):
            assert [r.kind for r in await partner.click_data(data)] == ["alert"], data
    # Someone of neither team cannot see the referral at all.
    await add_worker(sessionmaker, 3301, "ves-csp")
    stranger = make_client(user_id=3301)
    assert [(r.kind, r.text) for r in await stranger.click_data(f"ref:accept:0:{referral.id}:0")] == [
        ("alert", NOT_FOUND)
    ]
    async with sessionmaker() as session:
        assert (await session.get(Referral, referral.id)).state == "sent"


async def test_partner_team_in_a_hromada_does_not_oversee_that_hromada(
    make_client, reference, sessionmaker
) -> None:
    """The employment centre's team sits in Bilotserkivska: its coordinator is still a partner
    there, not the hromada's coordinator — a Bilotserkivska case referred to it stays closed."""
    owner, _ = await _setup(sessionmaker)
    await add_worker(sessionmaker, 3102, "blc-csp", display_name="Bila")
    case_id = await make_case(sessionmaker, owner, team="blc-csp", hromada="BLC", service="subsidy")
    await _refer(make_client(user_id=3102), case_id, EMPLOYMENT, "Потрібна консультація щодо роботи")
    boss = make_client(user_id=3202)
    for action in ("open", "history", "files"):
        assert [(r.kind, r.text) for r in await boss.click_data(f"case:{action}:{case_id}")] == [
            ("alert", NOT_FOUND)
        ]
    # Nor is the hromada among those whose queues and routing it oversees.
    assert [r.kind for r in await boss.click_data("wq:hromada:open:0:0")] == ["alert"]


async def test_external_partner_answer_recorded_by_worker(
    make_client, reference, sessionmaker, deliverer
) -> None:
    _, case_id = await _setup(sessionmaker)
    worker = make_client(user_id=3101)
    replies = await _refer(worker, case_id, PENSION, "Перерахувати пенсію з урахуванням стажу", "secret.pdf")
    card = next(r for r in replies if r.kind == "message" and "Контакти партнера" in r.text)
    assert "0 800 503 753" in card.text
    # The employment centre's people are not this partner: they cannot answer for it.
    partner = make_client(user_id=3201)
    async with sessionmaker() as session:
        referral = await session.scalar(select(Referral))
    assert [r.kind for r in await partner.click_data(f"ref:accept:0:{referral.id}:0")] == ["alert"]
    await worker.click("Відмовити", message_id=card.message_id)
    assert any("Напишіть словами" in r.text for r in await worker.send("!!!"))  # no words: asked again
    await worker.send("Потрібна особиста присутність у сервісному центрі")
    await deliverer.deliver_due()
    resident = make_client(user_id=3001)
    pushed = "\n".join(r.text for r in resident.read())
    assert "відмовила в направленні" in pushed and "особиста присутність" in pushed
    history = (await resident.click_data(f"my:open:{case_id}:0"))[-1].text
    assert f"{PENSION}: у направленні відмовлено — Потрібна особиста присутність" in history
    async with sessionmaker() as session:
        stored = await session.get(Referral, referral.id)
        assert stored.state == "declined" and stored.reason.startswith("Потрібна особиста")
        assert (await session.get(PartnerAgency, stored.partner_id)).kind == "external"
        # Nothing went to anybody in the bot as "the partner".
        kinds = (await session.scalars(select(OutboxMessage.kind))).all()
        assert "referral_new" not in kinds


async def test_a_partner_team_lists_its_open_referrals_most_urgent_first(
    make_client, reference, sessionmaker, deliverer, clock
) -> None:
    owner, case_id = await _setup(sessionmaker)
    second = await make_case(sessionmaker, owner, team="pyr-cnap", hromada="PYR", service="social_assistance")
    await add_worker(sessionmaker, 3301, "pyr-cnap", display_name="Other")  # of no partner team
    worker = make_client(user_id=3101)
    partner = make_client(user_id=3201)
    assert "немає" in (await partner.send("/referrals"))[-1].text

    await _refer(worker, case_id, EMPLOYMENT, "Допоможіть знайти роботу")
    clock.set(datetime(2026, 11, 23, 11, 0, tzinfo=UTC))
    await _refer(worker, second, EMPLOYMENT, "Потрібні курси перекваліфікації")
    await deliverer.deliver_due()
    async with sessionmaker() as session:
        numbers = {
            r.id: number
            for r, number in (
                await session.execute(
                    select(Referral, Case.number)
                    .join(Case, Case.id == Referral.case_id)
                    .order_by(Referral.id)
                )
            ).all()
        }
    first_ref, second_ref = sorted(numbers)

    listed = (await partner.send("/referrals"))[-1]
    assert "відкритих: 2" in listed.text
    # The earlier one is due first; only the number and service, never the subject's details.
    assert listed.text.index(numbers[first_ref]) < listed.text.index(numbers[second_ref])
    assert "Допоможіть" not in listed.text and "🆕" in listed.text
    card = (await partner.click(f"🆕 {numbers[first_ref]}", message_id=listed.message_id))[-1]
    assert "Допоможіть знайти роботу" in card.text
    await partner.click("Прийняти", message_id=card.message_id)
    refreshed = (await partner.click("🔄 Оновити", message_id=listed.message_id))[-1]
    assert f"🔧 {numbers[first_ref]}" in refreshed.buttons() and "відповісти до" in refreshed.text

    # Past its answer date it is marked; a declined referral leaves the list.
    clock.set(datetime(2026, 12, 20, 10, 0, tzinfo=UTC))
    overdue = (await partner.click("🔄 Оновити", message_id=listed.message_id))[-1]
    assert f"🔴 {numbers[first_ref]}" in overdue.buttons()
    await partner.click_data(f"ref:decline:0:{second_ref}:0")
    await partner.send("Не наш профіль, зверніться до ЦНАП")
    assert "відкритих: 1" in (await partner.send("/referrals"))[-1].text
    # Someone of no partner team sees nothing of it.
    assert "немає" in (await make_client(user_id=3301).send("/referrals"))[-1].text
