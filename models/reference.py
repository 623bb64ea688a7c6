"""Reference data: hromadas, settlements, services and their checklists, teams, routing rules.

Loaded from a YAML file by `hromada-bot seed` (services/reference_data.py) and editable by
coordinators; rows are matched by their stable `code`. Hromadas and settlements may also carry
their official KATOTTG code (the state codifier of places, services/places.py loads it): a row
named in the YAML and in the codifier is one row, matched by that code.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigIntPK


# A settlement or hromada name folded for search (services/places.py `search_key`). PostgreSQL
# uses a btree index for `LIKE 'prefix%'` only with the pattern operator class (the database's
# collation is not C); SQLite uses a plain index for `GLOB 'prefix*'`.
def _place_indexes(table: str) -> tuple[Index, Index]:
    return (
        Index(f"ix_{table}_search_key", "search_key", postgresql_ops={"search_key": "text_pattern_ops"}),
        # Unique where set: rows only the YAML knows have none.
        Index(f"uq_{table}_katottg", "katottg", unique=True),
    )


class Hromada(Base):
    __tablename__ = "hromadas"
    __table_args__ = _place_indexes("hromadas")

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)  # case number prefix, e.g. VES
    name_uk: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    oblast: Mapped[str] = mapped_column(String(40), index=True)  # oblast code, e.g. zaporizka
    # Occupied or front-line hromadas keep their data but accept no new requests to themselves.
    accepts_requests: Mapped[bool] = mapped_column(Boolean, default=True)
    # Official code, e.g. UA23060070000096089; None for rows that only the YAML knows.
    katottg: Mapped[str | None] = mapped_column(String(19))
    # The raion and oblast as people name them, to tell namesakes apart ("Мелітопольський").
    raion_uk: Mapped[str | None] = mapped_column(String(120))
    raion_en: Mapped[str | None] = mapped_column(String(120))
    oblast_uk: Mapped[str | None] = mapped_column(String(120))
    oblast_en: Mapped[str | None] = mapped_column(String(120))
    search_key: Mapped[str] = mapped_column(String(160), default="")

    settlements: Mapped[list[Settlement]] = relationship(
        back_populates="hromada", order_by="Settlement.name_uk"
    )

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_uk


class Settlement(Base):
    __tablename__ = "settlements"
    __table_args__ = (UniqueConstraint("hromada_id", "code"), *_place_indexes("settlements"))

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    hromada_id: Mapped[int] = mapped_column(ForeignKey("hromadas.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name_uk: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    starosta_district: Mapped[str | None] = mapped_column(String(120))
    katottg: Mapped[str | None] = mapped_column(String(19))
    # Codifier category: M city, T urban-type settlement, C village, X settlement, K special city.
    kind: Mapped[str | None] = mapped_column(String(1))
    search_key: Mapped[str] = mapped_column(String(160), default="")

    hromada: Mapped[Hromada] = relationship(back_populates="settlements")

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_uk


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    group_code: Mapped[str] = mapped_column(String(40))
    name_uk: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    description_uk: Mapped[str] = mapped_column(String(300), default="")
    description_en: Mapped[str] = mapped_column(String(300), default="")
    # Sensitive services (child protection) never show personal data in group chats.
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    # Periodic re-application (IDP allowance, subsidy); None when not renewable.
    renewal_days: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)

    documents: Mapped[list[DocumentRequirement]] = relationship(
        back_populates="service", order_by="DocumentRequirement.position"
    )

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_uk

    def description(self, locale: str) -> str:
        return self.description_en if locale == "en" else self.description_uk


class DocumentRequirement(Base):
    """One line of a service's document checklist."""

    __tablename__ = "document_requirements"
    __table_args__ = (UniqueConstraint("service_id", "code"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name_uk: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)

    service: Mapped[Service] = relationship(back_populates="documents")

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_uk


class Team(Base):
    """A worker queue: a hromada institution, a shared partner team, or the oblast fallback."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_uk: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    # The hromada whose institution this is; None for the oblast department.
    hromada_id: Mapped[int | None] = mapped_column(ForeignKey("hromadas.id", ondelete="SET NULL"), index=True)
    oblast: Mapped[str] = mapped_column(String(40), index=True)
    is_oblast_fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    # Optional group chat that gets new-case notices (personal data masked there).
    group_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    # Where residents bring documents (ЦНАП address), shown in document reminders.
    office_address_uk: Mapped[str] = mapped_column(Text, default="")
    office_address_en: Mapped[str] = mapped_column(Text, default="")
    # When the office receives people ("Пн–Пт 8:00–17:00"), as the team writes it.
    office_hours_uk: Mapped[str] = mapped_column(Text, default="")
    office_hours_en: Mapped[str] = mapped_column(Text, default="")

    hromada: Mapped[Hromada | None] = relationship()

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_uk

    def office_address(self, locale: str) -> str:
        return self.office_address_en if locale == "en" else self.office_address_uk

    def office_hours(self, locale: str) -> str:
        return self.office_hours_en if locale == "en" else self.office_hours_uk


class RoutingRule(Base):
    """Which team serves (hromada, service[, settlement]).

    kind: `own` — the hromada's own team; `delegation` — inter-municipal cooperation, another
    hromada's team serves this one; `fallback` — the oblast department for a whole oblast
    (hromada_id is NULL then). service_id NULL means every service.
    """

    __tablename__ = "routing_rules"
    __table_args__ = (
        UniqueConstraint("kind", "oblast", "hromada_id", "service_id", "settlement_id", "team_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    oblast: Mapped[str] = mapped_column(String(40), index=True)
    hromada_id: Mapped[int | None] = mapped_column(ForeignKey("hromadas.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("settlements.id", ondelete="CASCADE"))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    team: Mapped[Team] = relationship()
    hromada: Mapped[Hromada | None] = relationship()
    service: Mapped[Service | None] = relationship()
    settlement: Mapped[Settlement | None] = relationship()
