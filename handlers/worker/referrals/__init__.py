"""Referrals to partner agencies: the referring team's steps and the partner's answers."""

from handlers.worker.referrals.router import create_router

__all__ = ["create_router"]
