"""Saved replies, the coordinator's screens: teams, a team's templates, one template in its
languages, and the typed steps' prompts. Pure: (text, markup) in the current locale."""

from __future__ import annotations

import html
from collections.abc import Sequence

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import ReplyAdminCb
from models import Team
from services.reply_book import Template
from services.saved_replies import LOCALES, PLACEHOLDERS, TEXT_MAX, TITLE_MAX

Screen = tuple[str, InlineKeyboardMarkup]
FLAGS = {"uk": "🇺🇦", "en": "🇬🇧"}


def _flags(template: Template) -> str:
    return "".join(FLAGS[locale] for locale in LOCALES if locale in template.versions)


def teams_screen(teams: Sequence[Team], locale: str) -> Screen:
    builder = InlineKeyboardBuilder()
    for team in teams:
        builder.button(text=team.name(locale), callback_data=ReplyAdminCb(action="team", team_id=team.id))
    builder.adjust(1)
    return _("replies.admin.choose_team"), builder.as_markup()


def book_screen(team: Team, templates: Sequence[Template], locale: str) -> Screen:
    lines = [_("replies.admin.title") % {"team": html.escape(team.name(locale))}]
    lines.append(_("replies.admin.count") % {"n": len(templates)} if templates else _("replies.admin.empty"))
    builder = InlineKeyboardBuilder()
    for template in templates:
        builder.button(
            text=f"{_flags(template)} {template.title(locale)}",
            callback_data=ReplyAdminCb(action="open", reply_id=template.first.id),
        )
    builder.button(text=_("replies.btn.add"), callback_data=ReplyAdminCb(action="add", team_id=team.id))
    builder.adjust(1)
    return "\n".join(lines), builder.as_markup()


def locale_screen(team_id: int) -> Screen:
    builder = InlineKeyboardBuilder()
    for code in LOCALES:
        builder.button(
            text=f"{FLAGS[code]} {_('replies.locale.' + code)}",
            callback_data=ReplyAdminCb(action="new", team_id=team_id, locale=code),
        )
    builder.adjust(2)
    return _("replies.admin.choose_locale"), builder.as_markup()


def template_screen(team: Team, template: Template, locale: str, *, first: bool = False) -> Screen:
    lines = [_("replies.admin.template") % {"team": html.escape(team.name(locale))}]
    builder = InlineKeyboardBuilder()
    for code in LOCALES:
        version = template.versions.get(code)
        language = _("replies.locale." + code)
        if version is None:
            builder.button(
                text=_("replies.btn.translate") % {"language": language},
                callback_data=ReplyAdminCb(action="translate", reply_id=template.first.id, locale=code),
            )
            continue
        lines += ["", f"{FLAGS[code]} <b>{html.escape(version.title)}</b>", html.escape(version.text)]
        builder.button(
            text=_("replies.btn.edit_locale") % {"language": language},
            callback_data=ReplyAdminCb(action="edit", reply_id=version.id),
        )
        builder.button(
            text=_("replies.btn.rename_locale") % {"language": language},
            callback_data=ReplyAdminCb(action="rename", reply_id=version.id),
        )
    if not first:
        up = ReplyAdminCb(action="up", reply_id=template.first.id)
        builder.button(text=_("replies.btn.up"), callback_data=up)
    builder.button(
        text=_("replies.btn.delete"), callback_data=ReplyAdminCb(action="delete", reply_id=template.first.id)
    )
    builder.button(text=_("replies.btn.to_list"), callback_data=ReplyAdminCb(action="team", team_id=team.id))
    builder.adjust(1)
    return "\n".join(lines), builder.as_markup()


def ask_title(language_code: str) -> str:
    return _("replies.admin.ask_title") % {
        "language": _("replies.locale." + language_code),
        "limit": TITLE_MAX,
    }


def ask_new_title(language_code: str, current: str) -> str:
    return _("replies.admin.ask_new_title") % {
        "language": _("replies.locale." + language_code),
        "limit": TITLE_MAX,
        "current": html.escape(current),
    }


def ask_text(current: str | None = None) -> str:
    """The prompt for a template's text: the placeholders it may use, each explained."""
    lines = [_("replies.admin.ask_text") % {"limit": TEXT_MAX}, ""]
    lines += ["<code>{" + name + "}</code> — " + _("replies.placeholder." + name) for name in PLACEHOLDERS]
    if current is not None:
        lines += ["", _("replies.admin.current"), f"<code>{html.escape(current)}</code>"]
    return "\n".join(lines)
