"""official place codes (KATOTTG) and search keys for hromadas and settlements

Hromadas and settlements may carry their code in the state codifier of places; hromadas also
the raion and oblast names that tell namesakes apart. `search_key` is the name folded for the
settlement search (the folding is copied here so the migration does not change when the
application's code does); PostgreSQL indexes it with the pattern operator class so that
`LIKE 'prefix%'` uses the index whatever the database's collation.

Revision ID: 0005_katottg
Revises: 0004_worker
"""

import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_katottg"
down_revision: str | None = "0004_worker"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOLD = str.maketrans(
    {
        "'": None, "’": None, "ʼ": None, "`": None, "´": None, "‘": None, "ʹ": None, '"': None,
        "ъ": None, "ё": "е", "є": "е", "э": "е", "ї": "і", "и": "і", "ы": "і", "ґ": "г",
        "-": " ", "‐": " ", "–": " ", "—": " ", ".": " ", ",": " ",
    }
)
_LOOKALIKES = str.maketrans({"a": "а", "c": "с", "e": "е", "i": "і", "o": "о", "p": "р", "x": "х", "y": "у"})


def _key(name: str) -> str:
    text = unicodedata.normalize("NFC", name).casefold()
    if re.search(r"[а-яіїєґ]", text):
        text = text.translate(_LOOKALIKES)
    text = re.sub(r"[^\w ]+", " ", text.translate(_FOLD))
    return re.sub(r"\s+", " ", text).strip()


def upgrade() -> None:
    for table in ("hromadas", "settlements"):
        op.add_column(table, sa.Column("katottg", sa.String(19), nullable=True))
        op.add_column(table, sa.Column("search_key", sa.String(160), nullable=False, server_default=""))
        op.create_index(f"uq_{table}_katottg", table, ["katottg"], unique=True)
        op.create_index(
            f"ix_{table}_search_key", table, ["search_key"], postgresql_ops={"search_key": "text_pattern_ops"}
        )
    for column in ("raion_uk", "raion_en", "oblast_uk", "oblast_en"):
        op.add_column("hromadas", sa.Column(column, sa.String(120), nullable=True))
    op.add_column("settlements", sa.Column("kind", sa.String(1), nullable=True))

    conn = op.get_bind()
    for hid, uk, en in conn.execute(sa.text("SELECT id, name_uk, name_en FROM hromadas")).all():
        conn.execute(
            sa.text("UPDATE hromadas SET search_key = :k WHERE id = :id"),
            {"k": f"{_key(uk)} | {_key(en)}", "id": hid},
        )
    for sid, uk in conn.execute(sa.text("SELECT id, name_uk FROM settlements")).all():
        conn.execute(sa.text("UPDATE settlements SET search_key = :k WHERE id = :id"), {"k": _key(uk), "id": sid})


def downgrade() -> None:
    with op.batch_alter_table("settlements") as batch:
        batch.drop_index("ix_settlements_search_key")
        batch.drop_index("uq_settlements_katottg")
        for column in ("kind", "search_key", "katottg"):
            batch.drop_column(column)
    with op.batch_alter_table("hromadas") as batch:
        batch.drop_index("ix_hromadas_search_key")
        batch.drop_index("uq_hromadas_katottg")
        for column in ("raion_uk", "raion_en", "oblast_uk", "oblast_en", "search_key", "katottg"):
            batch.drop_column(column)
