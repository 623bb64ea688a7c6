"""Domain services: plain async code over an `AsyncSession`. No aiogram imports here."""
