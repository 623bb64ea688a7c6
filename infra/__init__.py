"""The ground floor: settings, database, i18n, Telegram session, rate limit, FSM storage,
migrations. Everything above leans on it; it imports nothing of ours but `models`."""
